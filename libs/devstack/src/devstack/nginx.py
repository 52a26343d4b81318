"""The API gateway in process mode: nginx run in the foreground with a generated config.

The config is `deploy/nginx/fleet.conf.template` rendered with the listen address, a run
directory (pid file, access log, temp files) and the local ports of each service's instances.
The caller runs `nginx_command(conf)` as a child process and stops it by its pid (SIGQUIT lets
in-flight requests finish).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

TEMPLATE_PATH = Path("deploy/nginx/fleet.conf.template")
WEB_CLIENT_PATH = Path("clients/web")
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
INSTALL_HINT = "apt-get install -y nginx-light (or nginx)"


class NginxError(RuntimeError):
    """nginx is missing or rejects the generated config."""


def repo_root(start: Path | None = None) -> Path:
    """The uv workspace root: the nearest directory with `uv.lock` or a workspace pyproject."""
    here = (start or Path(__file__)).resolve()
    for directory in (here, *here.parents):
        if (directory / "uv.lock").is_file():
            return directory
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            with pyproject.open("rb") as file:
                if "workspace" in tomllib.load(file).get("tool", {}).get("uv", {}):
                    return directory
    raise NginxError(f"no uv workspace root above {here}")


def _upstream_lines(service: str, ports: Sequence[int], options: str = "") -> str:
    if not ports:
        raise ValueError(f"{service} needs at least one port: nginx rejects an empty upstream")
    return "\n".join(f"        server 127.0.0.1:{port}{options};" for port in ports)


@dataclass(frozen=True)
class NginxSite:
    """Where nginx listens, where it keeps its files, and the ports of each service's instances."""

    listen_host: str
    listen_port: int
    run_dir: Path
    auth: Sequence[int]
    chat: Sequence[int]
    gateway: Sequence[int]
    workers: Sequence[int]
    max_body: str = "1m"
    """nginx's limit on request bodies: the services' own ``MAX_BODY_BYTES`` default."""
    media_max_body: str = "11m"
    """The limit on ``POST /api/media``: chat's 10 MiB ``MEDIA_MAX_BYTES`` plus framing."""
    template: Path | None = None
    web_root: Path | None = None
    """The web client's folder (``public/`` and ``node_modules/``); the repository's by default."""


def render_nginx_conf(site: NginxSite) -> str:
    """The complete nginx.conf for the fleet."""
    text = (site.template or repo_root() / TEMPLATE_PATH).read_text()
    host = site.listen_host
    return Template(text).substitute(
        # Workers started by a root master would run as `nobody` and could not write the temp
        # dirs inside a private run_dir; in process mode they run as whoever started nginx.
        user_directive="user root;" if os.geteuid() == 0 else "",
        run_dir=str(site.run_dir.resolve()),
        listen_host=f"[{host}]" if ":" in host else host,
        listen_port=site.listen_port,
        max_body=site.max_body,
        media_max_body=site.media_max_body,
        auth_upstreams=_upstream_lines("auth", site.auth),
        chat_upstreams=_upstream_lines("chat", site.chat),
        # A gateway marked failed for a moment would send its polling clients to the other
        # instance, which does not know their Engine.IO sessions: never mark one failed.
        gateway_upstreams=_upstream_lines("gateway", site.gateway, " max_fails=0"),
        workers_upstreams=_upstream_lines("workers", site.workers),
        web_root=str((site.web_root or repo_root() / WEB_CLIENT_PATH).resolve()),
    )


def write_nginx_conf(site: NginxSite) -> Path:
    """Render the config into `run_dir/nginx.conf`, creating the run and temp directories."""
    for name in TEMP_DIRS:
        (site.run_dir / name).mkdir(parents=True, exist_ok=True)
    conf = site.run_dir / "nginx.conf"
    conf.write_text(render_nginx_conf(site))
    return conf


def nginx_binary() -> str:
    """Path of the nginx executable (often in /usr/sbin, which a user's PATH may lack)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        raise NginxError(f"nginx is not installed: run `{INSTALL_HINT}`")
    return found


def nginx_command(conf_path: Path) -> list[str]:
    """The foreground nginx command for a config written by `write_nginx_conf`."""
    conf = conf_path.resolve()
    return [nginx_binary(), "-c", str(conf), "-p", str(conf.parent), "-e", "stderr"]


def check_config(conf_path: Path) -> None:
    """Run `nginx -t` on the config; raise `NginxError` with nginx's complaint if it fails."""
    done = subprocess.run(  # noqa: S603
        [*nginx_command(conf_path), "-t", "-q"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise NginxError(f"nginx -t rejected {conf_path}:\n{done.stderr}{done.stdout}")
