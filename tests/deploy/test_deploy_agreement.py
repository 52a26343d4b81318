"""Ports and image names agree across the Dockerfiles' services, compose, kustomize, the
compose nginx config and Prometheus."""

from __future__ import annotations

import re

from tests.deploy.rendered import (
    OVERLAYS,
    ROOT,
    SERVICES,
    container_env_value,
    deployment_container,
    deployment_service,
    named,
    of_kind,
    render_compose,
    render_kustomize,
    workload_containers,
)
from tests.deploy.settings_reads import (
    names_read,
)


def nginx_upstream_ports(text: str) -> dict[str, set[int]]:
    ports: dict[str, set[int]] = {}
    for block in re.finditer(r"upstream (\w+) \{(.*?)\}", text, flags=re.S):
        found = re.findall(r"server [\w.-]+:(\d+)", block.group(2))
        ports[block.group(1)] = {int(port) for port in found}
    return ports


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
