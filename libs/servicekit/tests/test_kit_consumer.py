"""The consumer runner on the real broker and Postgres: retries, dead-lettering, idempotency."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from contracts import make_envelope
from contracts.envelope import Envelope, encode_envelope
from contracts.events import MessageRead
from contracts.examples import EVENT_EXAMPLES
from contracts.names import MESSAGE_CREATED, MESSAGE_READ, dead_letter_queue
from contracts.topology import QueueSpec
from devstack.broker_probe import collect, collect_settled
from devstack.isolation import IsolatedInfra, free_port
from devstack.tcp_proxy import TcpProxy
from devstack.waiting import until
from servicekit.amqp.connection import connect
from servicekit.amqp.consumer import REASON_HEADER, RETRY_COUNT_HEADER, ConsumerRunner
from servicekit.amqp.publisher import ConfirmedPublisher, OutgoingMessage
from servicekit.inbox import PostgresInbox
from servicekit.metrics import ServiceMetrics
from servicekit.postgres import Connection, Pool
from servicekit.settings import AmqpSettings

pytestmark = pytest.mark.integration

Handler = Callable[[Envelope[Any], Connection], Awaitable[None]]


def read_event(seq: int = 1) -> Envelope[MessageRead]:
    payload = MessageRead(
        conversation_id=uuid.uuid4(), user_id=uuid.uuid4(), seq=seq, read_at=datetime.now(UTC)
    )
    return make_envelope(payload, producer="kit-tests")


async def record_effect(envelope: Envelope[Any], conn: Connection) -> None:
    await conn.execute(
        "INSERT INTO kit_effects (event_id, note) VALUES ($1, 'applied')", envelope.id
    )


async def effects(pool: Pool) -> list[uuid.UUID]:
    rows = await pool.fetch("SELECT event_id FROM kit_effects WHERE note = 'applied'")
    return [row["event_id"] for row in rows]


class RunnerHarness:
    def __init__(
        self,
        runner: ConsumerRunner[Connection],
        spec: QueueSpec,
        metrics: ServiceMetrics,
        connection: AbstractRobustConnection,
    ) -> None:
        self.runner = runner
        self.spec = spec
        self.metrics = metrics
        self.connection = connection

    def outcome(self, outcome: str) -> float:
        return self.metrics.consumed(self.spec.name, outcome)


class StartRunner(Protocol):
    async def __call__(
        self,
        handler: Handler,
        connection: AbstractRobustConnection = ...,
        runner_publisher: ConfirmedPublisher = ...,
        binding_keys: tuple[str, ...] = ...,
    ) -> RunnerHarness: ...


@pytest.fixture
async def start_runner(
    pool: Pool,
    broker: AbstractRobustConnection,
    publisher: ConfirmedPublisher,
    isolated_infra: IsolatedInfra,
) -> AsyncIterator[StartRunner]:
    started: list[RunnerHarness] = []

    async def start(
        handler: Handler,
        connection: AbstractRobustConnection = broker,
        runner_publisher: ConfirmedPublisher = publisher,
        binding_keys: tuple[str, ...] = (MESSAGE_READ,),
    ) -> RunnerHarness:
        spec = QueueSpec(
            name=f"kit.{uuid.uuid4().hex[:8]}.queue", binding_keys=binding_keys, consumer="kit"
        )
        metrics = ServiceMetrics()
        runner: ConsumerRunner[Connection] = ConsumerRunner(
            name="kit.consumer",
            queue=spec,
            handle=handler,
            inbox=PostgresInbox(pool),
            connection=connection,
            publisher=runner_publisher,
            settings=AmqpSettings(
                url=isolated_infra.amqp_url, prefetch=8, max_retries=2, retry_delay_ms=50
            ),
            metrics=metrics,
        )
        await runner.start()
        harness = RunnerHarness(runner, spec, metrics, connection)
        started.append(harness)
        return harness

    yield start
    for harness in started:
        await harness.runner.stop()
        if harness.connection is not broker:
            await harness.connection.close()


async def dead_letters(
    broker: AbstractRobustConnection, spec: QueueSpec, expected: int
) -> list[Any]:
    channel = await broker.channel()
    dlq = await channel.get_queue(dead_letter_queue(spec.name), ensure=True)
    return await collect(dlq, expected)


async def test_event_is_applied_and_acked(
    start_runner: StartRunner,
    publisher: ConfirmedPublisher,
    pool: Pool,
) -> None:
    harness = await start_runner(record_effect)
    envelope = read_event()
    await publisher.publish_envelopes([envelope])

    # Counted once acked, after the effect committed: waiting for the effect alone would race it.
    await until(lambda: harness.outcome("acked") == 1)
    assert await effects(pool) == [envelope.id]


async def test_redelivered_envelope_is_applied_once(
    start_runner: StartRunner,
    publisher: ConfirmedPublisher,
    pool: Pool,
) -> None:
    harness = await start_runner(record_effect)
    envelope = read_event()
    await publisher.publish_envelopes([envelope, envelope, envelope])

    await until(lambda: _outcomes(harness, 3))
    assert await effects(pool) == [envelope.id]
    assert harness.outcome("acked") == 1
    assert harness.outcome("duplicate") == 2


async def test_effect_of_a_failed_attempt_is_rolled_back_and_retried_once(
    start_runner: StartRunner,
    publisher: ConfirmedPublisher,
    pool: Pool,
) -> None:
    attempts: list[uuid.UUID] = []

    async def fails_after_writing_once(envelope: Envelope[Any], conn: Connection) -> None:
        await record_effect(envelope, conn)
        attempts.append(envelope.id)
        if len(attempts) == 1:
            raise RuntimeError("crashed after writing, before committing")

    harness = await start_runner(fails_after_writing_once)
    envelope = read_event()
    await publisher.publish_envelopes([envelope])

    await until(lambda: harness.outcome("acked") == 1)  # applied and acked: nothing follows
    assert await effects(pool) == [envelope.id]
    assert attempts == [envelope.id, envelope.id]
    assert harness.outcome("retried") == 1


async def test_poison_message_is_dead_lettered_with_reason_after_retries_and_consumer_keeps_going(
    start_runner: StartRunner,
    publisher: ConfirmedPublisher,
    broker: AbstractRobustConnection,
    pool: Pool,
) -> None:
    poison = read_event(seq=666)

    async def rejects_666(envelope: Envelope[Any], conn: Connection) -> None:
        if envelope.data.seq == 666:
            raise ValueError("seq 666 cannot be applied")
        await record_effect(envelope, conn)

    harness = await start_runner(rejects_666)
    await publisher.publish_envelopes([poison])
    [dead] = await dead_letters(broker, harness.spec, 1)

    assert dead.message_id == str(poison.id)
    reason = str(dead.headers[REASON_HEADER])
    assert "failed 3 times" in reason
    assert "seq 666 cannot be applied" in reason
    assert dead.headers[RETRY_COUNT_HEADER] == 2
    assert harness.outcome("retried") == 2
    assert harness.outcome("dead_lettered") == 1

    healthy = read_event(seq=1)
    await publisher.publish_envelopes([healthy])
    await until(lambda: _has_effects(pool, 1))
    assert await effects(pool) == [healthy.id]


async def test_a_store_outage_longer_than_the_retry_budget_dead_letters_nothing(
    start_runner: StartRunner,
    publisher: ConfirmedPublisher,
    broker: AbstractRobustConnection,
    pool: Pool,
) -> None:
    """A handler whose store is down fails for reasons that say nothing of the message: it is
    retried as often as it takes, without spending its retries, and applied once the store is
    back."""
    event = read_event(seq=7)
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    outage_attempts = 5  # more than the runner's max_retries

    async def store_down_for_a_while(envelope: Envelope[Any], conn: Connection) -> None:
        nonlocal outage_attempts
        if outage_attempts > 0:
            outage_attempts -= 1
            await asyncpg.connect(unreachable, timeout=2)  # refused: nothing listens there
        await record_effect(envelope, conn)

    harness = await start_runner(store_down_for_a_while)
    await publisher.publish_envelopes([event])
    await until(lambda: _has_effects(pool, 1), timeout=30)

    assert await effects(pool) == [event.id]
    assert harness.outcome("retried") == 5
    assert harness.outcome("dead_lettered") == 0
    channel = await broker.channel()
    dlq = await channel.get_queue(dead_letter_queue(harness.spec.name), ensure=True)
    assert await collect_settled(dlq, quiet=0.5) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json at all", "undecodable"),
        (b'{"id": "x"}', "undecodable"),
        (
            b'{"id":"6f1c8a34-4c0e-4d51-8a4b-0e0b3c1f9a10","type":"message.read","version":1,'
            b'"occurredAt":"2026-11-25T12:00:00Z","producer":"p","traceId":"t",'
            b'"data":{"conversationId":"nope"}}',
            "undecodable",
        ),
        (
            b'{"id":"6f1c8a34-4c0e-4d51-8a4b-0e0b3c1f9a10","type":"message.read","version":1,'
            b'"occurredAt":"2026-11-25T12:00:00Z","producer":"p\xff\xfe","traceId":"t",'
            b'"data":{}}',
            "not UTF-8",
        ),
    ],
    ids=["not-json", "not-an-envelope", "ill-typed-data", "not-utf8-inside-a-string"],
)
async def test_undecodable_message_goes_straight_to_the_dead_letter_queue(
    start_runner: StartRunner,
    publisher: ConfirmedPublisher,
    broker: AbstractRobustConnection,
    pool: Pool,
    body: bytes,
    reason: str,
) -> None:
    harness = await start_runner(record_effect)
    await publisher.publish(
        OutgoingMessage(routing_key=MESSAGE_READ, body=body, message_id="poison", type=MESSAGE_READ)
    )
    [dead] = await dead_letters(broker, harness.spec, 1)

    assert reason in str(dead.headers[REASON_HEADER])
    assert dead.body == body
    assert harness.outcome("retried") == 0
    assert await effects(pool) == []


async def test_event_of_a_type_the_queue_does_not_accept_is_dead_lettered(
    start_runner: StartRunner,
    publisher: ConfirmedPublisher,
    broker: AbstractRobustConnection,
    pool: Pool,
) -> None:
    harness = await start_runner(record_effect)
    stray = make_envelope(EVENT_EXAMPLES[MESSAGE_CREATED], producer="kit-tests")
    # A valid event, but routed here under a key this queue binds.
    await publisher.publish(
        OutgoingMessage(
            routing_key=MESSAGE_READ,
            body=encode_envelope(stray),
            message_id=str(stray.id),
            type=MESSAGE_CREATED,
        )
    )
    [dead] = await dead_letters(broker, harness.spec, 1)
    assert "unexpected type 'message.created'" in str(dead.headers[REASON_HEADER])
    assert await effects(pool) == []


async def _has_effects(pool: Pool, count: int) -> bool:
    return len(await effects(pool)) >= count


async def _outcomes(harness: RunnerHarness, count: int) -> bool:
    total = sum(harness.outcome(o) for o in ("acked", "duplicate", "retried", "dead_lettered"))
    return total >= count


@pytest.fixture
async def broker_proxy() -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy("127.0.0.1", 5672).start()
    yield proxy
    await proxy.close()


async def test_consumer_resumes_after_its_broker_connection_is_lost(
    broker_proxy: TcpProxy,
    start_runner: StartRunner,
    pool: Pool,
    publisher: ConfirmedPublisher,
    isolated_infra: IsolatedInfra,
) -> None:
    """Cut (what a broker restart looks like to the consumer) and restored: it consumes again."""
    url = broker_proxy.url_for(isolated_infra.amqp_url, 5672)
    connection = await connect(url, "consumer-under-test")
    await start_runner(
        record_effect, connection, await ConfirmedPublisher.open(connection, app_id="consumer")
    )
    before = read_event(seq=1)
    await publisher.publish_envelopes([before])
    await until(lambda: _has_effects(pool, 1))

    await broker_proxy.cut()
    during = read_event(seq=2)
    await publisher.publish_envelopes([during])  # the durable queue keeps it meanwhile
    await until(lambda: not connection.connected.is_set(), what="the consumer to lose its broker")
    await broker_proxy.restore()
    after = read_event(seq=3)
    await publisher.publish_envelopes([after])

    await until(lambda: _has_effects(pool, 3), timeout=30)
    expected = sorted(str(e.id) for e in (before, during, after))
    assert sorted(map(str, await effects(pool))) == expected


async def test_a_queue_bound_by_pattern_accepts_every_type_the_pattern_routes(
    start_runner: StartRunner, pool: Pool, publisher: ConfirmedPublisher
) -> None:
    await start_runner(record_effect, binding_keys=("message.*",))
    read = read_event()
    created = make_envelope(EVENT_EXAMPLES[MESSAGE_CREATED], producer="kit-tests")
    await publisher.publish_envelopes([read, created])
    await until(lambda: _has_effects(pool, 2))
    assert sorted(map(str, await effects(pool))) == sorted([str(read.id), str(created.id)])
