"""A service's whole broker side as one ``cleanup_ctx`` resource.

It connects (robustly), declares the topology, opens the confirmed publisher, runs the outbox
relay when the service has an outbox, starts the service's consumers, and at shutdown stops them
in the reverse order: consumers finish what they hold, the relay stops, connections close.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from servicekit.amqp.connection import connect, probe_broker
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.amqp.topology import declare_topology
from servicekit.http_app import METRICS, add_readiness_check
from servicekit.outbox import OutboxRelay
from servicekit.postgres import Pool
from servicekit.settings import PlatformSettings


class Consumer(Protocol):
    async def start(self) -> None: ...

    async def stop(self, timeout: float = 10.0) -> None: ...


@dataclass
class Messaging:
    connection: AbstractRobustConnection
    publisher: ConfirmedPublisher
    consumers: list[Consumer] = field(default_factory=list)


ConsumerFactory = Callable[[web.Application, Messaging], Consumer]

MESSAGING = web.AppKey("messaging", Messaging)


@dataclass(frozen=True)
class OutboxSource:
    pool_key: web.AppKey[Pool]
    database_url: str


def messaging_resource(
    platform: PlatformSettings,
    *,
    outbox: OutboxSource | None = None,
    consumers: Sequence[ConsumerFactory] = (),
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def resource(app: web.Application) -> AsyncIterator[None]:
        connection = await connect(platform.amqp.url, f"{platform.service}:{platform.instance_id}")
        relay_task: asyncio.Task[Any] | None = None
        messaging: Messaging | None = None
        try:
            channel = await connection.channel()
            await declare_topology(channel)
            await channel.close()
            publisher = await ConfirmedPublisher.open(connection, app_id=platform.service)
            messaging = Messaging(connection, publisher)
            app[MESSAGING] = messaging
            add_readiness_check(app, "rabbitmq", lambda: probe_broker(connection))
            if outbox is not None:
                relay = OutboxRelay(
                    app[outbox.pool_key],
                    publisher,
                    database_url=outbox.database_url,
                    metrics=app[METRICS],
                )
                relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
            for factory in consumers:
                consumer = factory(app, messaging)
                await consumer.start()
                messaging.consumers.append(consumer)
            yield
        finally:
            if messaging is not None:
                for consumer in reversed(messaging.consumers):
                    await consumer.stop()
            if relay_task is not None:
                relay_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay_task
            await connection.close()

    return resource
