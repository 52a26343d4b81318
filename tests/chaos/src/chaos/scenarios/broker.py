"""Faults of the broker: the RabbitMQ node stopped, then SIGKILLed (scenario 1), and poison
messages in every durable queue (scenario 8)."""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika

from chaos.load import Load
from chaos.scenarios.scenario import Faults, Timing, start_again
from chaos.stack import ChaosStack
from contracts.names import dead_letter_queue
from contracts.topology import QUEUES
from servicekit.amqp.consumer import REASON_HEADER

# 1. The broker


async def broker_stopped_then_killed(
    stack: ChaosStack, _: Load, timing: Timing, faults: Faults
) -> None:
    await asyncio.to_thread(stack.rabbit.stop)
    faults.note(f"RabbitMQ stopped {timing.outage:.0f} s")
    await asyncio.sleep(timing.outage)
    await start_again(stack, stack.rabbit.start, faults)
    await asyncio.sleep(timing.settle)
    await asyncio.to_thread(stack.rabbit.kill)
    faults.note("RabbitMQ SIGKILLed")
    await start_again(stack, stack.rabbit.start, faults)


# 8. Poison messages


def _poison_bodies() -> list[tuple[str, bytes]]:
    foreign = uuid.uuid4()
    return [
        ("not JSON", b"\xff\xfe not json"),
        ("JSON, not an envelope", b"[1, 2, 3]"),
        (
            "an envelope of an unknown type",
            (
                b'{"id":"%s","type":"no.such.event","occurredAt":"2026-12-07T00:00:00Z",'
                b'"data":{}}' % str(foreign).encode()
            ),
        ),
    ]


async def poison_in_every_queue(stack: ChaosStack, _: Load, timing: Timing, faults: Faults) -> None:
    connection = await aio_pika.connect(stack.rabbit.url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        sent: dict[str, set[str]] = {}
        for spec in QUEUES:
            for _what, body in _poison_bodies():
                marker = f"poison-{uuid.uuid4()}"
                await channel.default_exchange.publish(
                    aio_pika.Message(body, message_id=marker, delivery_mode=2),
                    routing_key=spec.name,
                )
                sent.setdefault(spec.name, set()).add(marker)
            faults.note(f"{len(_poison_bodies())} poison messages into {spec.name}")
        await asyncio.sleep(timing.settle)
        for queue_name, markers in sent.items():
            reasons = await _dead_lettered(channel, dead_letter_queue(queue_name), markers)
            if set(reasons) != markers:
                faults.problems.append(
                    f"{queue_name}: {len(markers) - len(reasons)} poison messages not in its .dlq"
                )
            faults.problems.extend(
                f"{queue_name}: dead-lettered without a reason" for r in reasons.values() if not r
            )
    finally:
        await connection.close()


async def _dead_lettered(
    channel: aio_pika.abc.AbstractChannel, dlq: str, markers: set[str]
) -> dict[str, str]:
    """The reason each marked message was dead-lettered with, for those found in ``dlq``."""
    queue = await channel.get_queue(dlq)
    found: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while set(found) != markers and time.monotonic() < deadline:
        message = await queue.get(fail=False, no_ack=False)
        if message is None:
            await asyncio.sleep(0.2)
            continue
        if message.message_id in markers:
            found[message.message_id] = str(message.headers.get(REASON_HEADER) or "")
            await message.ack()
        else:
            await message.nack(requeue=True)
            await asyncio.sleep(0.1)
    return found
