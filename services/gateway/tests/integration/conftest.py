"""Fixtures of the gateway's integration tests, on the session's Redis and RabbitMQ vhost.

``store``: a Redis client and a key space of the test's own (under the session's prefix), for
the pieces that live in Redis (presence, the membership cache).

``gateway``: the real gateway app in-process (one per module) with a stand-in for chat's REST
API (``ChatStandin``), so membership answers are whatever a test says. Tokens are minted with
the app's JWT settings. The rate limits are configured as small buckets that barely refill, so
the rate-limit tests reach them in a handful of events and every other test (each with users
and sockets of its own) stays far below them.

What those fixtures make is defined in ``gateway_rig``, where the tests import it from.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aio_pika.abc import AbstractRobustConnection
from aiohttp.test_utils import TestServer

from devstack.infra import delete_prefix
from devstack.isolation import REDIS_URL, IsolatedInfra, free_port
from gateway.app import create_app
from gateway.config import load_settings
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.redis_store import KeySpace, Redis, create_redis
from servicekit.resources import REDIS
from servicekit.settings import RedisSettings
from servicekit.tokens import RevocationList, TokenIssuer
from services.gateway.tests.integration.gateway_rig import ChatStandin, FakeChat, Gateway, Store

ACK_TIMEOUT_SECONDS = 2.0
# Barely refilling (one token in ~17 minutes): a test's count of allowed events is exact.
RATE_LIMITS = {
    "RATE_LIMIT_EVENTS_PER_SOCKET": "6:0.001",
    "RATE_LIMIT_EVENTS_PER_USER": "10:0.001",
    "RATE_LIMIT_SEND_PER_SOCKET": "4:0.001",
    "RATE_LIMIT_SEND_PER_USER": "6:0.001",
}


@pytest.fixture
async def store(isolated_infra: IsolatedInfra) -> AsyncIterator[Store]:
    prefix = f"{isolated_infra.redis_prefix}gw{uuid.uuid4().hex[:8]}:"
    redis: Redis = create_redis(RedisSettings(REDIS_URL, prefix))
    yield Store(redis, KeySpace(prefix), prefix)
    await redis.aclose()
    await delete_prefix(REDIS_URL, prefix)


@pytest.fixture
def fake_chat() -> FakeChat:
    return FakeChat()


@pytest.fixture
def chat_standin() -> ChatStandin:
    return ChatStandin()


@pytest.fixture(scope="module")
async def gateway(
    isolated_infra: IsolatedInfra,
    tmp_path_factory: pytest.TempPathFactory,
    broker: AbstractRobustConnection,
) -> AsyncIterator[Gateway]:
    chat = ChatStandin()
    plan = isolated_infra.fleet_plan(Path(tmp_path_factory.mktemp("gateway")))
    port = free_port()
    async with TestServer(chat.app(), host="127.0.0.1") as chat_server:
        env = plan.service_env("gateway", port)
        env.update(
            RATE_LIMITS,
            CHAT_URL=str(chat_server.make_url("")).rstrip("/"),
            INSTANCE_ID=f"gateway-test-{uuid.uuid4().hex[:8]}",
            MESSAGE_ACK_TIMEOUT=str(ACK_TIMEOUT_SECONDS),
        )
        settings = load_settings(env)
        app = create_app(settings)
        async with TestServer(app, host="127.0.0.1", port=port) as server:
            # Auth, which marks the revocation keys whole, does not run here.
            keys = KeySpace(settings.platform.redis.key_prefix)
            await RevocationList(app[REDIS], keys).rebuild([], [])
            publisher = await ConfirmedPublisher.open(broker, app_id="gateway-tests")
            try:
                yield Gateway(
                    url=str(server.make_url("")).rstrip("/"),
                    host="127.0.0.1",
                    port=port,
                    env=env,
                    settings=settings,
                    chat=chat,
                    issuer=TokenIssuer(settings.platform.jwt),
                    broker=broker,
                    publisher=publisher,
                )
            finally:
                await publisher.close()
