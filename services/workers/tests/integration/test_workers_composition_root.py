"""The notifications API owes nothing to the consumers: the token verifier, the stores (with
their indexes) and the push adapters are resources of their own, opened before the broker
side. Served with the broker side left out entirely (no connection, no consumer ever built),
the API still authenticates and answers from its stores."""

from __future__ import annotations

import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from devstack.http_replies import fetch_reply
from servicekit.messaging import MESSAGING
from servicekit.redis_store import KeySpace
from servicekit.resources import MONGO, REDIS
from servicekit.tokens import RevocationList, TokenIssuer
from workers.app import create_app
from workers.config import load_settings
from workers.devices import COLLECTION as DEVICES
from workers.notification_store import COLLECTION as NOTIFICATIONS

pytestmark = pytest.mark.integration


async def test_the_api_authenticates_and_answers_with_no_consumer_built(
    workers_env: dict[str, str],
) -> None:
    # A database of the test's own: the indexes found there are the ones this app created.
    database = f"{workers_env['MONGODB_DATABASE']}{uuid.uuid4().hex[:6]}"
    settings = load_settings({**workers_env, "MONGODB_DATABASE": database})
    app = create_app(settings)
    app.cleanup_ctx.pop()  # the broker side, which opens last
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert MESSAGING not in app, "what was left out was not the broker side"
        keys = KeySpace(settings.platform.redis.key_prefix)
        await RevocationList(app[REDIS], keys).rebuild([], [])
        user, session = uuid.uuid4(), uuid.uuid4()
        token = TokenIssuer(settings.platform.jwt).issue(user, session).token
        bearer = {"Authorization": f"Bearer {token}"}

        (await fetch_reply(client, "GET", "/api/notifications")).problem(401)
        page = (await fetch_reply(client, "GET", "/api/notifications", headers=bearer)).ok()
        assert page["notifications"] == []
        devices = await fetch_reply(client, "GET", "/api/notifications/devices", headers=bearer)
        assert devices.ok()["devices"] == []
        assert "platform_1_token_1" in await app[MONGO][DEVICES].index_information()
        assert "openKey_1" in await app[MONGO][NOTIFICATIONS].index_information()

        await RevocationList(app[REDIS], keys).revoke_session(session, 60)
        revoked = await fetch_reply(client, "GET", "/api/notifications", headers=bearer)
        assert "revoked" in revoked.problem(401)["detail"]
