"""``build_service_app`` opens a service's resources in one order: the stores, the token
verifier, the service's own resources, then the broker side. A consumer is built with the
verifier and the services already in the app, and stops before they close; a request is
authenticated with no help from any consumer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from devstack.isolation import IsolatedInfra
from servicekit.http_app import json_response
from servicekit.messaging import MESSAGING, Consumer, Messaging
from servicekit.redis_store import KeySpace
from servicekit.resources import REDIS, build_service_app
from servicekit.settings import Environment, ServiceSettings, read_platform
from servicekit.tokens import TOKEN_VERIFIER, RevocationList, TokenIssuer, authenticate

pytestmark = pytest.mark.integration

GREETING = web.AppKey("greeting", str)


async def whoami(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    return json_response({"userId": str(claims.user_id), "greeting": request.app[GREETING]})


class RecordedConsumer:
    def __init__(self, events: list[str]) -> None:
        self._events = events

    async def start(self) -> None:
        self._events.append("consumer started")

    async def stop(self, timeout: float = 10.0) -> None:
        self._events.append("consumer stopped")


async def test_services_open_after_the_verifier_and_before_the_consumers_that_use_them(
    isolated_infra: IsolatedInfra,
) -> None:
    prefix = f"{isolated_infra.redis_prefix}order{uuid.uuid4().hex[:6]}:"
    env = {
        "JWT_SECRET": "x" * 40,
        "APP_ENV": "test",
        "RABBITMQ_URL": isolated_infra.amqp_url,
        "REDIS_KEY_PREFIX": prefix,
    }
    platform = read_platform(Environment(env), "order-test", 0)
    events: list[str] = []

    async def greetings(app: web.Application) -> AsyncIterator[None]:
        events.append(f"services opened, verifier ready: {TOKEN_VERIFIER in app}")
        app[GREETING] = "hello"
        yield
        events.append("services closed")

    def consumer(app: web.Application, messaging: Messaging) -> Consumer:
        events.append(f"consumer built with {app[GREETING]!r}")
        return RecordedConsumer(events)

    app = build_service_app(
        ServiceSettings(platform, database_url=None, mongo=None),
        services=[greetings],
        consumers=[consumer],
    )
    app.router.add_get("/me", whoami)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        assert MESSAGING in app
        await RevocationList(app[REDIS], KeySpace(prefix)).rebuild([], [])
        user = uuid.uuid4()
        token = TokenIssuer(platform.jwt).issue(user, uuid.uuid4()).token
        async with aiohttp.ClientSession() as http:
            async with http.get(server.make_url("/me")) as response:
                assert response.status == 401
            headers = {"Authorization": f"Bearer {token}"}
            async with http.get(server.make_url("/me"), headers=headers) as response:
                assert response.status == 200
                assert await response.json() == {"userId": str(user), "greeting": "hello"}
    finally:
        await server.close()
    assert events == [
        "services opened, verifier ready: True",
        "consumer built with 'hello'",
        "consumer started",
        "consumer stopped",
        "services closed",
    ]
