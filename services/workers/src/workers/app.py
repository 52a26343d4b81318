"""The workers service's composition root: HTTP side (health, later the notifications API)
and the queue consumers, built on the service kit."""

from __future__ import annotations

from aiohttp import web

from contracts.names import NOTIFICATIONS_QUEUE
from servicekit.amqp.consumer import ConsumerRunner
from servicekit.amqp.topology import queue_spec
from servicekit.http_app import METRICS
from servicekit.inbox import MongoInbox
from servicekit.messaging import Messaging
from servicekit.resources import MONGO, build_service_app
from servicekit.settings import ServiceSettings
from workers.notifications import handle_message_created


def create_app(settings: ServiceSettings) -> web.Application:
    platform = settings.platform

    def notifications_consumer(app: web.Application, messaging: Messaging) -> ConsumerRunner[None]:
        return ConsumerRunner(
            name="workers.notifications",
            queue=queue_spec(NOTIFICATIONS_QUEUE),
            handle=handle_message_created,
            inbox=MongoInbox(app[MONGO]),
            connection=messaging.connection,
            publisher=messaging.publisher,
            settings=platform.amqp,
            metrics=app[METRICS],
        )

    return build_service_app(settings, consumers=[notifications_consumer])
