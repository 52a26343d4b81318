"""deploy/k8s: every overlay renders objects valid for Kubernetes 1.30 and 1.37 (and an
HTTPRoute valid for the Gateway API CRDs vendored in deploy/k8s/schemas), workloads have probes,
limits and locked-down containers, NetworkPolicies allow exactly the architecture's flows; each
check is proven to fail on a mutated rendered copy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.rendered import (
    K8S,
    K8S_VERSIONS,
    OVERLAYS,
    SERVICES,
    WORKLOADS,
    Doc,
    container_env_value,
    deployment_container,
    deployment_service,
    dump_and_reload,
    named,
    of_kind,
    render_kustomize,
    workload_containers,
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
