"""Test-side views of the broker: a queue of one's own bound to routing keys, and reading
what arrived on it (or on a dead-letter queue) without a consumer of the product."""

from __future__ import annotations

import asyncio
import uuid

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from contracts.names import EXCHANGE


async def declare_probe_queue(connection: AbstractRobustConnection, *keys: str) -> AbstractQueue:
    """A durable queue named ``probe.<random>``, bound on ``chat`` to ``keys``."""
    channel = await connection.channel()
    queue = await channel.declare_queue(f"probe.{uuid.uuid4().hex}", durable=True)
    for key in keys:
        await queue.bind(EXCHANGE, routing_key=key)
    return queue


async def _take(queue: AbstractQueue) -> AbstractIncomingMessage | None:
    message = await queue.get(fail=False)
    if message is not None:
        await message.ack()
    return message


async def collect(
    queue: AbstractQueue, expected: int, timeout: float = 20.0
) -> list[AbstractIncomingMessage]:
    """Ack and return messages until ``expected`` arrived; TimeoutError if they do not."""
    received: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(timeout):
        while len(received) < expected:
            if (message := await _take(queue)) is not None:
                received.append(message)
            else:
                await asyncio.sleep(0.05)
    return received


async def collect_settled(
    queue: AbstractQueue, quiet: float = 1.0
) -> list[AbstractIncomingMessage]:
    """Everything that arrives until the queue stayed empty for ``quiet`` seconds."""
    loop = asyncio.get_running_loop()
    received: list[AbstractIncomingMessage] = []
    idle_since = loop.time()
    while loop.time() - idle_since < quiet:
        if (message := await _take(queue)) is not None:
            received.append(message)
            idle_since = loop.time()
        else:
            await asyncio.sleep(0.05)
    return received
