"""deploy/compose: every profile set renders and validates, holds the services it promises,
starts them in order once healthy with the variables the code needs, and the observability
profile scrapes every service."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.rendered import (
    BIN,
    COMPOSE_FILE,
    COMPOSE_PROFILE_SETS,
    ROOT,
    SERVICES,
    Doc,
    render_compose,
    run_tool,
)
from tests.deploy.settings_reads import (
    env_example_names,
    must_be_set_in_containers,
    names_read,
)


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
