"""Fixtures of the workers' integration tests, on the session's servers.

``workers_env``: the workers' environment on a RabbitMQ vhost and a Redis key prefix of the
test's own (its queues start empty: other suites publish on the session's vhost).
``start_workers``: the real workers app from an environment, served on a free port, closed at
the end of the test (``StartWorkers``, defined in ``workers_rig`` with what it answers).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from devstack.isolation import IsolatedInfra, free_port
from servicekit.redis_store import KeySpace
from servicekit.resources import REDIS
from servicekit.tokens import RevocationList
from services.workers.tests.integration.workers_rig import StartedWorkers, StartWorkers
from workers.app import create_app
from workers.config import load_settings


@pytest.fixture
def workers_env(isolated_infra: IsolatedInfra, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The test's own vhost (removed when the test ends, after its workers stopped)."""
    env = isolated_infra.fleet_plan(tmp_path).service_env("workers", free_port())
    tag = uuid.uuid4().hex[:6]
    env["RABBITMQ_URL"] = isolated_infra.own_vhost(f"workers{tag}")
    env["REDIS_KEY_PREFIX"] = f"{isolated_infra.redis_prefix}w{tag}:"
    yield env
    isolated_infra.drop_own_vhost(f"workers{tag}")


@pytest.fixture
async def start_workers(workers_env: dict[str, str]) -> AsyncIterator[StartWorkers]:
    servers: list[TestServer] = []

    async def start(env: dict[str, str]) -> StartedWorkers:
        server = TestServer(create_app(load_settings(env)), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        # Auth, which marks the revocation keys whole, does not run here.
        keys = KeySpace(env["REDIS_KEY_PREFIX"])
        await RevocationList(server.app[REDIS], keys).rebuild([], [])
        return StartedWorkers(server.app, str(server.make_url("")).rstrip("/"))

    yield start
    for server in reversed(servers):
        await server.close()
