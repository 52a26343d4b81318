"""Test-side views of the broker: a queue of one's own bound to routing keys, and reading
what arrived on it (or on a dead-letter queue) without a consumer of the product."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from contracts.names import EXCHANGE

Probe = Callable[..., Awaitable[AbstractQueue]]
"""``await probe(*routing_keys)``: a new probe queue bound to those keys."""


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


class ProbeQueues:
    """Probe queues bound on demand after ``settle()`` (e.g. an outbox drained), so a test's
    queue sees only what is published from then on; ``delete_all()`` removes them."""

    def __init__(
        self, connection: AbstractRobustConnection, settle: Callable[[], Awaitable[None]]
    ) -> None:
        self._connection = connection
        self._settle = settle
        self._queues: list[AbstractQueue] = []

    async def bind(self, *keys: str) -> AbstractQueue:
        await self._settle()
        queue = await declare_probe_queue(self._connection, *keys)
        self._queues.append(queue)
        return queue

    async def delete_all(self) -> None:
        for queue in self._queues:
            await queue.delete(if_unused=False, if_empty=False)
