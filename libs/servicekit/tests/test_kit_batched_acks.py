"""``BatchedAcks`` on the real broker: every handled delivery is acked, in fewer frames than
deliveries, and a delivery still being handled is not acked with those after it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aio_pika import Message
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from servicekit.amqp.batched_acks import BatchedAcks

pytestmark = pytest.mark.integration


async def fill(connection: AbstractRobustConnection, count: int) -> tuple[str, AbstractQueue]:
    channel = await connection.channel()
    name = f"kit.acks.{uuid.uuid4().hex}"
    queue = await channel.declare_queue(name, durable=True)
    for n in range(count):
        await channel.default_exchange.publish(Message(str(n).encode()), routing_key=name)
    return name, queue


async def ready_and_unacked(connection: AbstractRobustConnection, name: str) -> int:
    """Messages the broker still holds for ``name`` once the consuming channel is closed."""
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        assert queue.declaration_result.message_count is not None
        return queue.declaration_result.message_count
    finally:
        await channel.close()


async def test_every_handled_delivery_is_acked_in_fewer_frames(
    broker: AbstractRobustConnection,
) -> None:
    name, filled = await fill(broker, 300)
    channel = await broker.channel()
    await channel.set_qos(prefetch_count=64)
    queue = await channel.declare_queue(name, passive=True)
    acks = BatchedAcks()
    handled: list[int] = []
    finished = asyncio.Event()

    async def handle(message: AbstractIncomingMessage) -> None:
        acks.received(message)
        await asyncio.sleep(0)
        handled.append(int(message.body))
        acks.done(message)
        if len(handled) == 300:
            finished.set()

    tag = await queue.consume(handle)
    async with asyncio.timeout(20):
        await finished.wait()
    await asyncio.sleep(0)
    await acks.drain()
    await queue.cancel(tag)
    await channel.close()
    try:
        assert sorted(handled) == list(range(300))
        assert await ready_and_unacked(broker, name) == 0
        assert 0 < acks.frames < 300
    finally:
        await filled.delete(if_unused=False, if_empty=False)


async def test_a_delivery_still_being_handled_holds_back_the_acks_after_it(
    broker: AbstractRobustConnection,
) -> None:
    name, filled = await fill(broker, 5)
    channel = await broker.channel()
    queue = await channel.declare_queue(name, passive=True)
    acks = BatchedAcks()
    messages = []
    for _ in range(5):
        message = await queue.get(no_ack=False)
        acks.received(message)
        messages.append(message)
    for message in messages[1:]:  # the first is still being handled
        acks.done(message)
    await asyncio.sleep(0)
    await acks.drain()
    assert acks.frames == 0
    await channel.close()  # the broker takes back all five: none was acked
    try:
        assert await ready_and_unacked(broker, name) == 5
    finally:
        await filled.delete(if_unused=False, if_empty=False)


async def test_the_oldest_done_releases_the_whole_run_in_one_frame(
    broker: AbstractRobustConnection,
) -> None:
    name, filled = await fill(broker, 5)
    channel = await broker.channel()
    queue = await channel.declare_queue(name, passive=True)
    acks = BatchedAcks()
    messages = []
    for _ in range(5):
        message = await queue.get(no_ack=False)
        acks.received(message)
        messages.append(message)
    for message in reversed(messages[:4]):
        acks.done(message)
    await asyncio.sleep(0)
    await acks.drain()
    assert acks.frames == 1
    await channel.close()  # only the fifth, never done, goes back
    try:
        assert await ready_and_unacked(broker, name) == 1
    finally:
        await filled.delete(if_unused=False, if_empty=False)


async def test_deliveries_of_a_closed_channel_are_forgotten_not_acked_on_the_new_one(
    broker: AbstractRobustConnection,
) -> None:
    name, filled = await fill(broker, 2)
    acks = BatchedAcks()
    old = await broker.channel()
    stale = await (await old.declare_queue(name, passive=True)).get(no_ack=False)
    acks.received(stale)
    await old.close()  # the broker requeues it
    new = await broker.channel()
    queue = await new.declare_queue(name, passive=True)
    first = await queue.get(no_ack=False)
    acks.received(first)
    acks.done(stale)  # late completion of the old delivery: ignored
    acks.done(first)
    await asyncio.sleep(0)
    await acks.drain()
    assert acks.frames == 1
    assert not new.is_closed  # no ack of an unknown tag
    await new.close()
    try:
        assert await ready_and_unacked(broker, name) == 1
    finally:
        await filled.delete(if_unused=False, if_empty=False)
