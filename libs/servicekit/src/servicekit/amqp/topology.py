"""Idempotent declaration of the exchanges and queues named in ``contracts``.

Runs unchanged on RabbitMQ 4.3+: every shared queue is durable (quorum for work and dead-letter
queues), per-instance queues are exclusive, and QoS is per consumer, never global.
"""

from __future__ import annotations

from collections.abc import Iterable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from contracts.names import DEAD_LETTER_EXCHANGE, EXCHANGE, dead_letter_queue, retry_queue
from contracts.topology import QUEUES, QueueSpec

# Redeliveries without an ack (a consumer killed mid-message, again and again) end in the DLQ.
DELIVERY_LIMIT = 20


async def declare_exchanges(channel: AbstractChannel) -> AbstractExchange:
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    return exchange


async def declare_work_queue(channel: AbstractChannel, spec: QueueSpec) -> AbstractQueue:
    """The queue, its ``.dlq`` and its ``.retry`` queue that returns messages after a delay."""
    queue = await channel.declare_queue(
        spec.name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": spec.name,
            "x-delivery-limit": DELIVERY_LIMIT,
        },
    )
    for key in spec.binding_keys:
        await queue.bind(EXCHANGE, routing_key=key)
    dlq = await channel.declare_queue(
        dead_letter_queue(spec.name), durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dlq.bind(DEAD_LETTER_EXCHANGE, routing_key=spec.name)
    # Expired retries go back through the default exchange straight to the work queue only,
    # not through ``chat`` where every other bound queue would receive them again. The delay is
    # each message's own expiration, not a queue argument: services configured with different
    # delays can then all declare the queue (a differing argument would be refused).
    await channel.declare_queue(
        retry_queue(spec.name),
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": spec.name},
    )
    return queue


async def declare_topology(
    channel: AbstractChannel, queues: Iterable[QueueSpec] = QUEUES
) -> AbstractExchange:
    """Everything a publisher needs to be routable and a consumer needs to start."""
    exchange = await declare_exchanges(channel)
    for spec in queues:
        await declare_work_queue(channel, spec)
    return exchange


async def declare_instance_queue(
    channel: AbstractChannel, name: str, binding_keys: Iterable[str]
) -> AbstractQueue:
    """A per-instance fan-out queue: exclusive, so it dies with its connection."""
    queue = await channel.declare_queue(name, exclusive=True, durable=False)
    for key in binding_keys:
        await queue.bind(EXCHANGE, routing_key=key)
    return queue


def queue_spec(name: str) -> QueueSpec:
    for spec in QUEUES:
        if spec.name == name:
            return spec
    raise KeyError(f"no queue named {name!r} in contracts.topology.QUEUES")
