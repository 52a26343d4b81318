"""The batch consumer runner on the real broker: what arrives together is handled together, in
order; poison is dead-lettered alone and a failing batch falls back to one at a time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from contracts import make_envelope
from contracts.envelope import Envelope
from contracts.events import MessageRead
from contracts.names import MESSAGE_READ, dead_letter_queue
from contracts.topology import QueueSpec
from devstack.broker_probe import collect
from devstack.isolation import IsolatedInfra
from devstack.waiting import until
from servicekit.amqp.batch_consumer import BatchConsumerRunner
from servicekit.amqp.consumer import REASON_HEADER
from servicekit.amqp.publisher import ConfirmedPublisher, OutgoingMessage
from servicekit.inbox import IdempotentEffects
from servicekit.metrics import ServiceMetrics
from servicekit.settings import AmqpSettings

pytestmark = pytest.mark.integration

HandleBatch = Callable[[Sequence[Envelope[Any]]], Awaitable[None]]


def read_event(seq: int) -> Envelope[MessageRead]:
    payload = MessageRead(
        conversation_id=uuid.uuid4(), user_id=uuid.uuid4(), seq=seq, read_at=datetime.now(UTC)
    )
    return make_envelope(payload, producer="kit-tests")


class Recorder:
    """Keeps the seqs each batch call saw, and what ended up applied (once per seq)."""

    def __init__(self, poison: int | None = None) -> None:
        self.calls: list[list[int]] = []
        self.applied: list[int] = []
        self._poison = poison

    async def batch(self, envelopes: Sequence[Envelope[Any]]) -> None:
        seqs = [envelope.data.seq for envelope in envelopes]
        self.calls.append(seqs)
        if self._poison in seqs:
            raise ValueError(f"seq {self._poison} cannot be applied")
        await asyncio.sleep(0.02)  # a transaction's worth of time: later arrivals queue up
        self.applied += [seq for seq in seqs if seq not in self.applied]

    async def one(self, envelope: Envelope[Any], _: None) -> None:
        await self.batch([envelope])


Started = tuple[BatchConsumerRunner[None], QueueSpec, ServiceMetrics]


@pytest.fixture
async def start_batches(
    broker: AbstractRobustConnection,
    publisher: ConfirmedPublisher,
    isolated_infra: IsolatedInfra,
) -> AsyncIterator[Callable[[Recorder], Awaitable[Started]]]:
    started: list[BatchConsumerRunner[None]] = []

    async def start(recorder: Recorder) -> Started:
        spec = QueueSpec(
            name=f"kit.{uuid.uuid4().hex[:8]}.queue", binding_keys=(MESSAGE_READ,), consumer="kit"
        )
        metrics = ServiceMetrics()
        runner: BatchConsumerRunner[None] = BatchConsumerRunner(
            handle_batch=recorder.batch,
            max_batch=16,
            name="kit.batches",
            queue=spec,
            handle=recorder.one,
            inbox=IdempotentEffects(),
            connection=broker,
            publisher=publisher,
            settings=AmqpSettings(
                url=isolated_infra.amqp_url, prefetch=16, max_retries=2, retry_delay_ms=50
            ),
            metrics=metrics,
        )
        await runner.start()
        started.append(runner)
        return runner, spec, metrics

    yield start
    for runner in started:
        await runner.stop()


async def test_a_burst_is_handled_in_batches_in_arrival_order_and_all_acked(
    start_batches: Callable[[Recorder], Awaitable[Started]],
    publisher: ConfirmedPublisher,
    broker: AbstractRobustConnection,
) -> None:
    recorder = Recorder()
    runner, spec, metrics = await start_batches(recorder)
    await publisher.publish_envelopes([read_event(seq) for seq in range(1, 61)])

    await until(lambda: len(recorder.applied) == 60)
    assert recorder.applied == list(range(1, 61))
    assert [seq for call in recorder.calls for seq in call] == list(range(1, 61))
    assert len(recorder.calls) < 60, "a burst is more than one message per batch"
    assert max(len(call) for call in recorder.calls) <= 16
    assert runner.batches == len(recorder.calls)
    # Counted as each batch's ack goes out, just after the batch is applied.
    await until(lambda: metrics.consumed(spec.name, "acked") == 60)
    # Every delivery was acked: nothing comes back once the consumer is gone.
    await runner.stop()
    channel = await broker.channel()
    queue = await channel.declare_queue(spec.name, passive=True)
    assert queue.declaration_result.message_count == 0
    await channel.close()


async def test_poison_in_a_batch_is_dead_lettered_alone_and_the_rest_is_applied_once(
    start_batches: Callable[[Recorder], Awaitable[Started]],
    publisher: ConfirmedPublisher,
    broker: AbstractRobustConnection,
) -> None:
    recorder = Recorder(poison=13)
    _, spec, metrics = await start_batches(recorder)
    undecodable_id = uuid.uuid4().hex
    await publisher.publish_envelopes([read_event(seq) for seq in range(1, 11)])
    await publisher.publish(
        OutgoingMessage(
            routing_key=MESSAGE_READ, body=b"{not json", message_id=undecodable_id, type="x"
        )
    )
    await publisher.publish_envelopes([read_event(seq) for seq in range(11, 21)])

    await until(lambda: metrics.consumed(spec.name, "dead_lettered") == 2)
    await until(lambda: len(recorder.applied) == 19)
    assert sorted(recorder.applied) == [seq for seq in range(1, 21) if seq != 13]
    # The failing batch was retried one message at a time; 13 alone was retried, then dropped.
    assert [13] in recorder.calls
    assert metrics.consumed(spec.name, "retried") == 2

    channel = await broker.channel()
    dlq = await channel.get_queue(dead_letter_queue(spec.name), ensure=True)
    dead = await collect(dlq, 2)
    reasons = {message.message_id: str(message.headers[REASON_HEADER]) for message in dead}
    assert reasons[undecodable_id].startswith("undecodable")
    [poison_reason] = [r for key, r in reasons.items() if key != undecodable_id]
    assert "seq 13 cannot be applied" in poison_reason
    await channel.close()
