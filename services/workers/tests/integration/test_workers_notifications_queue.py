"""The workers service consumes ``notifications.queue`` through the service kit's runner."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from contracts import make_envelope
from contracts.examples import EVENT_EXAMPLES
from contracts.names import MESSAGE_CREATED, NOTIFICATIONS_QUEUE
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.http_app import METRICS
from servicekit.inbox import MongoInbox
from servicekit.messaging import MESSAGING
from servicekit.resources import MONGO

if TYPE_CHECKING:
    from services.workers.tests.integration.conftest import StartWorkers

pytestmark = pytest.mark.integration


@pytest.fixture
async def workers_app(workers_env: dict[str, str], start_workers: StartWorkers) -> web.Application:
    return (await start_workers(workers_env)).app


def consumed(app: web.Application, outcome: str) -> int:
    return app[METRICS].consumed(NOTIFICATIONS_QUEUE, outcome)


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
