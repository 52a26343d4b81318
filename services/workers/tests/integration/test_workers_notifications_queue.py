"""The workers service consumes ``notifications.queue`` through the service kit's runner."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contracts import make_envelope
from contracts.examples import EVENT_EXAMPLES
from contracts.names import MESSAGE_CREATED
from devstack.isolation import IsolatedInfra, free_port
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.http_app import METRICS
from servicekit.inbox import MongoInbox
from servicekit.messaging import MESSAGING
from servicekit.resources import MONGO
from workers.app import create_app
from workers.config import load_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def workers_app(
    isolated_infra: IsolatedInfra, tmp_path: Path
) -> AsyncIterator[web.Application]:
    plan = isolated_infra.fleet_plan(tmp_path)
    env = plan.service_env("workers", free_port())
    # notifications.queue must start empty: other suites publish message.created on the
    # session's vhost.
    env["RABBITMQ_URL"] = isolated_infra.own_vhost(f"workers{uuid.uuid4().hex[:6]}")
    app = create_app(load_settings(env))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield app
    await server.close()


def consumed(app: web.Application, outcome: str) -> float:
    value = app[METRICS].registry.get_sample_value(
        "amqp_messages_consumed_total", {"queue": "notifications.queue", "outcome": outcome}
    )
    return value or 0.0


async def test_message_created_is_consumed_once_even_when_redelivered(
    workers_app: web.Application,
) -> None:
    publisher: ConfirmedPublisher = workers_app[MESSAGING].publisher
    event = make_envelope(EVENT_EXAMPLES[MESSAGE_CREATED], producer="chat")
    await publisher.publish_envelopes([event, event])

    async with asyncio.timeout(15):
        while consumed(workers_app, "acked") + consumed(workers_app, "duplicate") < 2:
            await asyncio.sleep(0.05)

    assert consumed(workers_app, "acked") == 1
    assert consumed(workers_app, "duplicate") == 1
    marks = workers_app[MONGO][MongoInbox.COLLECTION]
    assert await marks.count_documents({"_id": f"workers.notifications:{event.id}"}) == 1
