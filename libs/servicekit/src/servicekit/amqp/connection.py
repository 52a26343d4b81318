"""Robust AMQP connections: they reconnect after a broker restart and restore their channels,
queues and consumers; the readiness probe really opens a channel."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractRobustConnection


async def connect(url: str, name: str) -> AbstractRobustConnection:
    return await aio_pika.connect_robust(
        url,
        client_properties={"connection_name": name},
        reconnect_interval=1,
    )


async def probe_broker(connection: AbstractRobustConnection) -> None:
    if connection.is_closed or not connection.connected.is_set():
        raise ConnectionError("broker connection is down")
    channel = await connection.channel(publisher_confirms=False)
    await channel.close()
