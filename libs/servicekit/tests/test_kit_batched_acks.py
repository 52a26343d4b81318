"""``BatchedAcks`` on the real broker: every handled delivery is acked, in fewer frames than
deliveries, and a delivery still being handled is not acked with those after it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aio_pika import Message
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

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


async def take(
    connection: AbstractRobustConnection, name: str, acks: BatchedAcks, count: int
) -> tuple[AbstractChannel, list[AbstractIncomingMessage]]:
    """A channel of its own, and ``count`` deliveries from ``name`` whose handling has started."""
    channel = await connection.channel()
    queue = await channel.declare_queue(name, passive=True)
    messages = []
    for _ in range(count):
        message = await queue.get(no_ack=False)
        acks.received(message)
        messages.append(message)
    return channel, messages


async def settle(acks: BatchedAcks) -> None:
    await asyncio.sleep(0)  # the loop turn that decides the batch
    await acks.drain()


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
    await settle(acks)
    await queue.cancel(tag)
    await channel.close()
    try:
        assert sorted(handled) == list(range(300))
        assert await ready_and_unacked(broker, name) == 0
        assert 0 < acks.frames < 300
    finally:
        await filled.delete(if_unused=False, if_empty=False)


@pytest.mark.parametrize(
    ("done", "frames", "taken_back"),
    [
        # The first is still being handled: it holds back the four after it.
        ([1, 2, 3, 4], 0, 5),
        # Done newest first, the oldest last: its completion releases the run of four at once.
        ([3, 2, 1, 0], 1, 1),
    ],
)
async def test_acks_go_out_for_the_longest_run_of_done_deliveries_from_the_oldest(
    broker: AbstractRobustConnection, done: list[int], frames: int, taken_back: int
) -> None:
    name, filled = await fill(broker, 5)
    acks = BatchedAcks()
    channel, messages = await take(broker, name, acks, 5)
    for index in done:
        acks.done(messages[index])
    await settle(acks)
    assert acks.frames == frames
    await channel.close()  # the broker takes back what was not acked
    try:
        assert await ready_and_unacked(broker, name) == taken_back
    finally:
        await filled.delete(if_unused=False, if_empty=False)


async def test_deliveries_of_a_closed_channel_are_forgotten_not_acked_on_the_new_one(
    broker: AbstractRobustConnection,
) -> None:
    name, filled = await fill(broker, 2)
    acks = BatchedAcks()
    old, [stale] = await take(broker, name, acks, 1)
    await old.close()  # the broker requeues it
    new, [first] = await take(broker, name, acks, 1)
    acks.done(stale)  # late completion of the old delivery: ignored
    acks.done(first)
    await settle(acks)
    assert acks.frames == 1
    assert not new.is_closed  # no ack of an unknown tag
    await new.close()
    try:
        assert await ready_and_unacked(broker, name) == 1
    finally:
        await filled.delete(if_unused=False, if_empty=False)
