"""/readyz probes each dependency for real: it names what is down and recovers by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from devstack.isolation import RABBITMQ_PORT, IsolatedInfra
from devstack.tcp_proxy import TcpProxy
from devstack.waiting import until_equal
from servicekit.http_app import create_service_app
from servicekit.resources import service_resources
from servicekit.settings import Environment, read_platform

pytestmark = pytest.mark.integration


@pytest.fixture
async def proxies() -> AsyncIterator[dict[str, TcpProxy]]:
    started = {
        "postgres": await TcpProxy("127.0.0.1", 5432).start(),
        "rabbitmq": await TcpProxy("127.0.0.1", RABBITMQ_PORT).start(),
    }
    yield started
    for proxy in started.values():
        await proxy.close()


@pytest.fixture
async def service_url(
    proxies: dict[str, TcpProxy], isolated_infra: IsolatedInfra, kit_database_url: str
) -> AsyncIterator[str]:
    platform = read_platform(
        Environment(
            {
                "JWT_SECRET": "x" * 40,
                "APP_ENV": "test",
                "RABBITMQ_URL": proxies["rabbitmq"].url_for(isolated_infra.amqp_url, RABBITMQ_PORT),
                "REDIS_KEY_PREFIX": isolated_infra.redis_prefix,
            }
        ),
        "probe-test",
        0,
    )
    app = create_service_app("probe-test", platform.http)
    app.cleanup_ctx.extend(
        service_resources(
            platform, database_url=proxies["postgres"].url_for(kit_database_url, 5432)
        )
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url(""))
    await server.close()


async def readiness(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as response:
        return response.status, await response.json(content_type=None)


async def readiness_status(url: str) -> int:
    return (await readiness(url))[0]


@pytest.mark.parametrize("dependency", ["postgres", "rabbitmq"])
async def test_readyz_names_the_dependency_that_is_down_and_recovers_without_restart(
    service_url: str, proxies: dict[str, TcpProxy], dependency: str
) -> None:
    status, body = await readiness(service_url)
    assert (status, body["status"]) == (200, "ready")

    await proxies[dependency].cut()
    status, body = await readiness(service_url)
    assert status == 503
    assert body["title"] == "Service Unavailable"
    assert body["detail"] == f"Not ready: {dependency} unavailable"

    await proxies[dependency].restore()
    await until_equal(lambda: readiness_status(service_url), 200, timeout=20, interval=0.2)
    async with aiohttp.ClientSession() as session, session.get(f"{service_url}/healthz") as ok:
        assert ok.status == 200
