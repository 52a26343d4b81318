"""Fixtures of chat's integration tests: the real app in-process on a fresh, migrated Postgres
database, with the session's Redis prefix and Mongo wire server, and a RabbitMQ vhost of the
chat suite's own inside the session's namespace (``broker_url``).

One app per test module (``chat_server``). Chat only verifies tokens, so tests mint them with the
app's JWT settings; the users they stand for reach chat's replica the way production users do,
as ``user.registered`` events on the ``chat`` exchange that the app's consumer applies. The queue
side of the send path is driven the way the gateway drives it: ``message.send`` envelopes
published with a confirmed publisher on that vhost.

Bodies above 256 bytes go to MongoDB, so the large-body tests stay cheap; a failing command is
retried once after 50 ms before it is dead-lettered.

What those fixtures make is defined in ``chat_rig``, where the tests import it from.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aio_pika.abc import AbstractRobustConnection
from aiohttp.test_utils import TestClient, TestServer

from chat.app import create_app, migration_sets
from chat.config import load_settings
from devstack.isolation import IsolatedInfra, free_port
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.redis_store import KeySpace
from servicekit.resources import REDIS
from servicekit.service_main import migrate
from servicekit.tokens import RevocationList, TokenIssuer
from services.chat.tests.integration.chat_rig import Api, ChatServer

INLINE_BYTES = 256
SETTINGS = {
    # Scripted bursts of one user: the per-user REST limits are the e2e suite's to test.
    "RATE_LIMIT_REST_SEND_PER_USER": "100000:100000",
    "RATE_LIMIT_CONVERSATIONS_PER_USER": "100000:100000",
    "RATE_LIMIT_UPLOADS_PER_USER": "100000:100000",
    "MESSAGE_INLINE_BYTES": str(INLINE_BYTES),
    "AMQP_MAX_RETRIES": "1",
    "AMQP_RETRY_DELAY_MS": "50",
}


@pytest.fixture(scope="session")
def broker_url(isolated_infra: IsolatedInfra) -> str:
    """A vhost of this suite's own in the session's namespace (devstack's ``broker`` and the app
    use it): its retry queues carry this suite's short retry delay, and RabbitMQ refuses to
    redeclare a queue with other arguments (the other suites declare the same queues with the
    default delay on the session's vhost)."""
    return isolated_infra.own_vhost("chat")


@pytest.fixture(scope="module")
async def chat_server(
    isolated_infra: IsolatedInfra,
    tmp_path_factory: pytest.TempPathFactory,
    broker: AbstractRobustConnection,
    broker_url: str,
) -> AsyncIterator[ChatServer]:
    plan = isolated_infra.fleet_plan(Path(tmp_path_factory.mktemp("chat")))
    env = plan.service_env("chat", free_port())
    database_url = await isolated_infra.create_database(f"chat_{uuid.uuid4().hex[:10]}")
    await migrate(database_url, migration_sets())
    env.update(DATABASE_URL=database_url, RABBITMQ_URL=broker_url, **SETTINGS)
    settings = load_settings(env)
    app = create_app(settings)
    publisher = await ConfirmedPublisher.open(broker, app_id="chat-tests")
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        # Auth, which marks the revocation keys whole, does not run here: mark them as it would.
        await RevocationList(app[REDIS], KeySpace(settings.platform.redis.key_prefix)).rebuild(
            [], []
        )
        yield ChatServer(
            app,
            client,
            settings,
            database_url,
            publisher,
            TokenIssuer(settings.platform.jwt),
            broker,
        )
    await publisher.close()


@pytest.fixture
def api(chat_server: ChatServer) -> Api:
    return Api(chat_server.client)


@pytest.fixture
def probe_settle(chat_server: ChatServer) -> Callable[[], Awaitable[None]]:
    """devstack's ``probe`` binds once the outbox has published every earlier event."""
    return chat_server.outbox_drained
