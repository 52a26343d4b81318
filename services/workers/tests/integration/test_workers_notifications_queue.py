"""The workers service consumes ``notifications.queue`` through the service kit's runner."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from contracts import make_envelope
from contracts.events import NotificationRequested
from contracts.examples import EVENT_EXAMPLES
from contracts.names import NOTIFICATION_REQUESTED, NOTIFICATIONS_QUEUE
from devstack.waiting import until
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.http_app import METRICS
from servicekit.messaging import MESSAGING
from servicekit.resources import MONGO
from workers.notification_store import COLLECTION

if TYPE_CHECKING:
    from services.workers.tests.integration.workers_rig import StartWorkers

pytestmark = pytest.mark.integration


@pytest.fixture
async def workers_app(workers_env: dict[str, str], start_workers: StartWorkers) -> web.Application:
    return (await start_workers(workers_env)).app


def consumed(app: web.Application, outcome: str) -> int:
    return app[METRICS].consumed(NOTIFICATIONS_QUEUE, outcome)


async def test_a_notification_request_is_applied_once_even_when_redelivered(
    workers_app: web.Application,
) -> None:
    publisher: ConfirmedPublisher = workers_app[MESSAGING].publisher
    example = EVENT_EXAMPLES[NOTIFICATION_REQUESTED]
    assert isinstance(example, NotificationRequested)
    event = make_envelope(example, producer="chat")
    [recipient] = example.notify_ids
    await publisher.publish_envelopes([event, event])

    await until(lambda: consumed(workers_app, "acked") >= 2)

    # Both deliveries are handled (nothing is recorded per event); the notification absorbed
    # the event once, by its id.
    notifications = workers_app[MONGO][COLLECTION]
    found = [d async for d in notifications.find({"recipientId": str(recipient)})]
    assert [(d["count"], d["eventIds"]) for d in found] == [(1, [str(event.id)])]
