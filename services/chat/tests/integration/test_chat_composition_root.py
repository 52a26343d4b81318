"""Chat's HTTP API owes nothing to its consumers: the token verifier and the services the
handlers use are resources of their own, opened before the broker side. Served with the broker
side left out entirely (no connection, no relay, no consumer ever built), the API still
authenticates, refuses a revoked session and answers from its services."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chat.app import create_app, migration_sets
from chat.config import ChatSettings, load_settings
from devstack.http_replies import Client, fetch_reply
from devstack.isolation import IsolatedInfra, free_port
from servicekit.messaging import MESSAGING
from servicekit.redis_store import KeySpace
from servicekit.resources import REDIS
from servicekit.service_main import migrate
from servicekit.tokens import RevocationList, TokenIssuer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def without_broker(
    isolated_infra: IsolatedInfra, tmp_path_factory: pytest.TempPathFactory, broker_url: str
) -> AsyncIterator[tuple[web.Application, Client, ChatSettings]]:
    plan = isolated_infra.fleet_plan(Path(tmp_path_factory.mktemp("chat-no-broker")))
    env = plan.service_env("chat", free_port())
    database_url = await isolated_infra.create_database(f"chat_{uuid.uuid4().hex[:10]}")
    await migrate(database_url, migration_sets())
    env.update(DATABASE_URL=database_url, RABBITMQ_URL=broker_url)
    settings = load_settings(env)
    app = create_app(settings)
    app.cleanup_ctx.pop()  # the broker side, which opens last
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert MESSAGING not in app, "what was left out was not the broker side"
        await RevocationList(app[REDIS], KeySpace(settings.platform.redis.key_prefix)).rebuild(
            [], []
        )
        yield app, client, settings


async def test_requests_are_authenticated_with_no_consumer_built(
    without_broker: tuple[web.Application, Client, ChatSettings],
) -> None:
    app, client, settings = without_broker
    issuer = TokenIssuer(settings.platform.jwt)
    user, session = uuid.uuid4(), uuid.uuid4()
    bearer = {"Authorization": f"Bearer {issuer.issue(user, session).token}"}

    (await fetch_reply(client, "GET", "/api/chat")).problem(401)
    assert (await fetch_reply(client, "GET", "/api/chat", headers=bearer)).ok() == {
        "conversations": [],
        "nextCursor": None,
    }
    assert (await fetch_reply(client, "GET", "/api/chat/blocks", headers=bearer)).ok() == {
        "blocks": []
    }
    missing = await fetch_reply(client, "GET", f"/api/media/{uuid.uuid4()}", headers=bearer)
    missing.problem(404)

    keys = KeySpace(settings.platform.redis.key_prefix)
    await RevocationList(app[REDIS], keys).revoke_session(session, 60)
    revoked = await fetch_reply(client, "GET", "/api/chat", headers=bearer)
    assert "revoked" in revoked.problem(401)["detail"]
