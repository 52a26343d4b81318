"""Fixtures of auth's integration tests: the real app in-process on a fresh, migrated Postgres
database, with the session's Redis prefix, Mongo wire server and RabbitMQ vhost.

One app per test module (``auth_server``), one HTTP client view per test (``api``) that sends
its requests from an IP address of its own (``X-Forwarded-For``), so the per-IP limits one test
exhausts never throttle another. The limits are small on purpose: the rate-limit tests reach them
in a few requests.

What those fixtures make is defined in ``auth_rig``, where the tests import it from.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from auth.app import create_app, migration_sets
from auth.config import load_settings
from devstack.isolation import IsolatedInfra, free_port
from servicekit.service_main import migrate
from services.auth.tests.integration.auth_rig import Api, AuthServer, ChatMediaStandin

# Small limits, reached in a few requests by the rate-limit tests; every other test has an IP
# of its own, and every account its own name, so nothing else comes near them.
LIMITS = {
    "LOGIN_MAX_FAILURES_PER_ACCOUNT": "3",
    "LOGIN_MAX_FAILURES_PER_ACCOUNT_ALL_ADDRESSES": "5",
    "LOGIN_MAX_ATTEMPTS_PER_IP": "6",
    "REGISTER_MAX_PER_IP": "3",
}


@pytest.fixture(scope="module")
async def auth_server(
    isolated_infra: IsolatedInfra,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[AuthServer]:
    plan = isolated_infra.fleet_plan(Path(tmp_path_factory.mktemp("auth")))
    env = plan.service_env("auth", free_port())
    database_url = await isolated_infra.create_database(f"auth_{uuid.uuid4().hex[:10]}")
    await migrate(database_url, migration_sets())
    chat = ChatMediaStandin()
    async with TestServer(chat.app(), host="127.0.0.1") as chat_server:
        env.update(
            DATABASE_URL=database_url,
            BCRYPT_ROUNDS="4",
            CHAT_URL=str(chat_server.make_url("")).rstrip("/"),
            **LIMITS,
        )
        settings = load_settings(env)
        app = create_app(settings)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield AuthServer(app, client, plan, settings, database_url, chat)


@pytest.fixture
def api(auth_server: AuthServer) -> Api:
    return Api(auth_server.client)


@pytest.fixture
def probe_settle(auth_server: AuthServer) -> Callable[[], Awaitable[None]]:
    """devstack's ``probe`` binds once the outbox has published every earlier event."""
    return auth_server.outbox_drained
