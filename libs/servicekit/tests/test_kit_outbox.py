"""The transactional outbox and its relay, on the real Postgres and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import msgspec
import pytest
from aio_pika.abc import AbstractRobustConnection

from contracts import make_envelope
from contracts.envelope import Envelope
from contracts.events import MessageRead
from contracts.examples import EVENT_EXAMPLES
from contracts.names import MESSAGE_CREATED, MESSAGE_READ
from devstack.background import in_background
from devstack.broker_probe import collect, collect_settled, declare_probe_queue
from devstack.isolation import RABBITMQ_PORT, IsolatedInfra
from devstack.tcp_proxy import TcpProxy
from devstack.waiting import until
from servicekit.amqp.connection import connect
from servicekit.amqp.publisher import ConfirmedPublisher, OutgoingMessage, PublishFailedError
from servicekit.outbox import OutboxRelay, add_to_outbox
from servicekit.postgres import Pool

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("exchanges")]


def read_event(seq: int) -> Envelope[MessageRead]:
    payload = MessageRead(
        conversation_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        seq=seq,
        read_at=msgspec.json.decode(b'"2026-11-25T12:00:00Z"', type=datetime),
    )
    return make_envelope(payload, producer="kit-tests")


async def write_events(pool: Pool, envelopes: list[Envelope[MessageRead]]) -> None:
    for envelope in envelopes:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO kit_effects (event_id, note) VALUES ($1, 'state')", envelope.id
            )
            await add_to_outbox(conn, [envelope])


async def relay_listening(pool: Pool, since: datetime) -> bool:
    """A connection opened since ``since`` sits idle after its LISTEN: a relay's listener."""
    count: int = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_start >= $1 AND state = 'idle' AND query LIKE 'LISTEN %'",
        since,
    )
    return count > 0


async def unpublished(pool: Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return count


async def test_rolled_back_transaction_leaves_neither_state_nor_event(
    pool: Pool,
    broker: AbstractRobustConnection,
    publisher: ConfirmedPublisher,
    kit_database_url: str,
) -> None:
    queue = await declare_probe_queue(broker, MESSAGE_READ)
    envelope = read_event(1)
    with pytest.raises(RuntimeError, match="abort"):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO kit_effects (event_id) VALUES ($1)", envelope.id)
            await add_to_outbox(conn, [envelope])
            raise RuntimeError("abort")
    relay = OutboxRelay(pool, publisher, database_url=kit_database_url)

    assert await relay.publish_pending() == 0
    assert await pool.fetchval("SELECT count(*) FROM kit_effects") == 0
    assert await collect_settled(queue, quiet=0.5) == []


async def test_committed_event_is_published_once_with_its_id(
    pool: Pool,
    broker: AbstractRobustConnection,
    publisher: ConfirmedPublisher,
    kit_database_url: str,
) -> None:
    queue = await declare_probe_queue(broker, MESSAGE_READ)
    envelope = read_event(1)
    await write_events(pool, [envelope])
    relay = OutboxRelay(pool, publisher, database_url=kit_database_url)

    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0
    [message] = await collect(queue, 1)
    assert message.message_id == str(envelope.id)
    assert message.type == MESSAGE_READ
    assert message.delivery_mode == 2  # persistent
    assert await collect_settled(queue, quiet=0.5) == []
    assert await unpublished(pool) == 0


async def test_relay_is_woken_by_notify_not_by_polling(
    pool: Pool,
    broker: AbstractRobustConnection,
    publisher: ConfirmedPublisher,
    kit_database_url: str,
) -> None:
    queue = await declare_probe_queue(broker, MESSAGE_READ)
    relay = OutboxRelay(pool, publisher, database_url=kit_database_url, poll_interval=120)
    started_at = await pool.fetchval("SELECT clock_timestamp()")
    async with in_background(relay.run()):
        # Listening (its first pass, at once, finds nothing): it now waits on NOTIFY.
        await until(lambda: relay_listening(pool, started_at), what="the relay to LISTEN")
        envelope = read_event(1)
        await write_events(pool, [envelope])
        # A poll would take two minutes; only the commit's NOTIFY can deliver it this soon.
        [message] = await collect(queue, 1, timeout=10)
    assert message.message_id == str(envelope.id)


async def test_two_relays_publish_every_row_once_in_order(
    pool: Pool, broker: AbstractRobustConnection, kit_database_url: str
) -> None:
    queue = await declare_probe_queue(broker, MESSAGE_READ)
    envelopes = [read_event(seq) for seq in range(1, 301)]
    first = await ConfirmedPublisher.open(broker, app_id="relay-1")
    second = await ConfirmedPublisher.open(broker, app_id="relay-2")
    relays = [
        OutboxRelay(pool, first, database_url=kit_database_url, batch_size=25),
        OutboxRelay(pool, second, database_url=kit_database_url, batch_size=25),
    ]
    async with in_background(relays[0].run()), in_background(relays[1].run()):
        await write_events(pool, envelopes)
        received = await collect(queue, len(envelopes))
        received += await collect_settled(queue, quiet=1.0)

    assert [m.message_id for m in received] == [str(e.id) for e in envelopes]
    assert {m.app_id for m in received} <= {"relay-1", "relay-2"}
    assert await unpublished(pool) == 0


async def test_relay_publishes_every_row_across_a_broker_outage(
    pool: Pool,
    broker: AbstractRobustConnection,
    isolated_infra: IsolatedInfra,
    kit_database_url: str,
) -> None:
    """The relay's broker connection is cut mid-stream (what a broker restart looks like to a
    client) and restored: every row is published and marked, none is lost; a row whose confirm
    was lost with the connection may arrive twice, with the same event id for consumers."""
    queue = await declare_probe_queue(broker, MESSAGE_READ)
    proxy = await TcpProxy("127.0.0.1", RABBITMQ_PORT).start()
    relay_connection = await connect(
        proxy.url_for(isolated_infra.amqp_url, RABBITMQ_PORT), "relay-under-test"
    )
    relay_publisher = await ConfirmedPublisher.open(relay_connection, app_id="relay")
    relay = OutboxRelay(pool, relay_publisher, database_url=kit_database_url, batch_size=20)
    envelopes = [read_event(seq) for seq in range(1, 201)]
    try:
        async with in_background(relay.run()):
            await write_events(pool, envelopes[:100])
            await proxy.cut()
            await write_events(pool, envelopes[100:150])
            await asyncio.sleep(1.5)  # the relay's chance to publish: it must not manage
            assert await unpublished(pool) > 0  # nothing can be confirmed while cut
            await proxy.restore()
            await write_events(pool, envelopes[150:])
            received = await collect(queue, len(envelopes), timeout=60)
            received += await collect_settled(queue, quiet=1.0)
    finally:
        await relay_connection.close()
        await proxy.close()

    expected_ids = {str(e.id) for e in envelopes}
    received_ids = [m.message_id for m in received]
    assert set(received_ids) == expected_ids
    assert await unpublished(pool) == 0


async def test_an_event_no_live_instance_subscribes_to_does_not_hold_back_the_outbox(
    pool: Pool,
    broker: AbstractRobustConnection,
    publisher: ConfirmedPublisher,
    kit_database_url: str,
) -> None:
    """``message.read`` only reaches per-instance gateway queues; with no gateway running it
    routes nowhere, and the rows behind it must still go out."""
    orphan = read_event(1)
    await write_events(pool, [orphan])
    queue = await declare_probe_queue(broker, MESSAGE_CREATED)
    follower = make_envelope(EVENT_EXAMPLES[MESSAGE_CREATED], producer="kit-tests")
    async with pool.acquire() as conn, conn.transaction():
        await add_to_outbox(conn, [follower])
    relay = OutboxRelay(pool, publisher, database_url=kit_database_url)

    assert await relay.publish_pending() == 2
    [message] = await collect(queue, 1)
    assert message.message_id == str(follower.id)
    assert await unpublished(pool) == 0


async def test_an_unroutable_message_that_must_be_routed_is_an_error(
    publisher: ConfirmedPublisher,
) -> None:
    with pytest.raises(PublishFailedError, match="1 of 1 messages not confirmed"):
        await publisher.publish(
            OutgoingMessage(
                routing_key="kit.nobody.listens", body=b"{}", message_id="m", type="kit"
            )
        )
