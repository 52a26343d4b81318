"""The fleet in process mode: which processes run, with which environment, behind nginx.

One plan serves both ``make run`` (fixed ports, databases ``auth`` and ``chat``) and the e2e test
session (free ports, databases, vhost, Redis prefix and Mongo databases of its own), so the tests
exercise exactly what a developer runs.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devstack.infra import create_database, ensure_running
from devstack.nginx import NginxSite, check_config, nginx_command, write_nginx_conf

SERVICES = ("auth", "chat", "gateway", "workers")
POSTGRES_OWNERS = ("auth", "chat")
MONGO_OWNERS = ("auth", "chat", "workers")
MEDIA_USERS = ("chat", "workers")


@dataclass(frozen=True)
class Process:
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]

    def procfile_line(self) -> str:
        assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in self.env.items())
        command = " ".join(shlex.quote(part) for part in self.argv)
        return f"{self.name}: exec env {assignments} {command}"


@dataclass(frozen=True)
class FleetPlan:
    run_dir: Path
    jwt_secret: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 3000
    service_ports: Mapping[str, tuple[int, ...]] = field(
        default_factory=lambda: {
            "auth": (8001,),
            "chat": (8002,),
            "gateway": (8003,),
            "workers": (8004,),
        }
    )
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    database_prefix: str = ""
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = ""
    mongo_url: str | None = None
    mongo_standin_port: int = 27018
    mongo_database_prefix: str = ""
    app_env: str = "development"
    log_format: str = "json"
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def media_root(self) -> Path:
        """The blob store chat writes uploads to and the workers process: one directory."""
        return self.run_dir / "media"

    @property
    def public_url(self) -> str:
        return f"http://{self.listen_host}:{self.listen_port}"

    @property
    def effective_mongo_url(self) -> str:
        return self.mongo_url or (
            f"mongodb://127.0.0.1:{self.mongo_standin_port}/?directConnection=true"
        )

    def database_name(self, service: str) -> str:
        return f"{self.database_prefix}{service}"

    def database_url(self, service: str) -> str:
        base, _, _ = self.postgres_url.rpartition("/")
        return f"{base}/{self.database_name(service)}"

    def service_env(self, service: str, port: int, instance: int = 0) -> dict[str, str]:
        env = {
            "APP_ENV": self.app_env,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "INSTANCE_ID": f"{service}-{instance}",
            "LOG_FORMAT": self.log_format,
            "RABBITMQ_URL": self.rabbitmq_url,
            "REDIS_URL": self.redis_url,
            "REDIS_KEY_PREFIX": self.redis_prefix,
            "JWT_SECRET": self.jwt_secret,
        }
        if service in POSTGRES_OWNERS:
            env["DATABASE_URL"] = self.database_url(service)
        if service == "auth":
            env["CHAT_URL"] = f"http://127.0.0.1:{self.service_ports['chat'][0]}"
        if service == "chat":
            env["AUTH_URL"] = f"http://127.0.0.1:{self.service_ports['auth'][0]}"
        if service == "gateway":
            env["CHAT_URL"] = f"http://127.0.0.1:{self.service_ports['chat'][0]}"
            # Browsers may open sockets from the fleet's own origin only.
            env["SOCKET_IO_CORS"] = self.public_url
        if service in MONGO_OWNERS:
            env["MONGODB_URL"] = self.effective_mongo_url
            env["MONGODB_DATABASE"] = f"{self.mongo_database_prefix}{service}"
        if service in MEDIA_USERS:
            env["MEDIA_ROOT"] = str(self.media_root.resolve())
        env.update(self.extra_env)
        return env

    def processes(self) -> list[Process]:
        python = sys.executable
        found: list[Process] = []
        if self.mongo_url is None:
            found.append(
                Process(
                    "mongo",
                    (
                        python,
                        "-m",
                        "devstack.mongo_standin",
                        "--port",
                        str(self.mongo_standin_port),
                    ),
                    {},
                )
            )
        for service in SERVICES:
            for instance, port in enumerate(self.service_ports[service]):
                name = service if instance == 0 else f"{service}{instance + 1}"
                env = self.service_env(service, port, instance)
                found.append(Process(name, (python, "-m", service), env))
        conf = self.run_dir / "nginx.conf"
        found.append(Process("nginx", tuple(nginx_command(conf)), {}))
        return found


def _say(message: str) -> None:
    print(f"[fleet] {message}", flush=True)


def migrate(plan: FleetPlan) -> None:
    for service in POSTGRES_OWNERS:
        port = plan.service_ports[service][0]
        done = subprocess.run(  # noqa: S603 - argv of our own interpreter and module
            [sys.executable, "-m", service, "migrate"],
            env={"PATH": "/usr/bin:/bin", **plan.service_env(service, port)},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"migrating {service} failed:\n{done.stdout}{done.stderr}")
        _say(f"{service}: migrations applied")


def prepare(plan: FleetPlan, *, start_infra: bool = True) -> Path:
    """Everything before the processes start; returns the Procfile to run."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    if start_infra:
        ensure_running(plan.postgres_url, plan.redis_url, plan.rabbitmq_url)
    for service in POSTGRES_OWNERS:
        asyncio.run(create_database(plan.postgres_url, plan.database_name(service)))
        _say(f"postgres database {plan.database_name(service)}: ready")
    migrate(plan)
    conf = write_nginx_conf(
        NginxSite(
            listen_host=plan.listen_host,
            listen_port=plan.listen_port,
            run_dir=plan.run_dir,
            auth=plan.service_ports["auth"],
            chat=plan.service_ports["chat"],
            gateway=plan.service_ports["gateway"],
            workers=plan.service_ports["workers"],
        )
    )
    check_config(conf)
    _say(f"nginx config: {conf}")
    if plan.mongo_url is None:
        _say(
            "MONGODB_URL is unset: starting the mongoeco wire server as a DEVELOPMENT STAND-IN "
            f"for MongoDB on port {plan.mongo_standin_port} (production uses real MongoDB 7+)"
        )
    procfile = plan.run_dir / "Procfile"
    procfile.write_text("".join(f"{p.procfile_line()}\n" for p in plan.processes()))
    return procfile


def honcho_command(procfile: Path) -> list[str]:
    return [
        sys.executable, "-m", "honcho", "start",
        "--no-colour", "-f", str(procfile), "-d", str(procfile.parent), "-e", "/dev/null",
    ]  # fmt: skip
