"""The environment: every variable the code reads is documented in .env.example, and set in
the Kubernetes workloads where its default only fits a developer's machine; the ConfigMap holds
only what some service reads, and the Secret's keys are documented for the platform team."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from pathlib import Path

import pytest

from tests.deploy.rendered import (
    K8S,
    OVERLAYS,
    ROOT,
    SERVICES,
    STATIC,
    Doc,
    config_map_data,
    container_env_names,
    deployment_container,
    deployment_service,
    dump_and_reload,
    of_kind,
    render_kustomize,
    workload_containers,
)
from tests.deploy.settings_reads import (
    env_example_names,
    must_be_set_in_containers,
    names_read,
)


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
