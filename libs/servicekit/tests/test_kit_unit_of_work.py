"""The unit of work on the real Postgres: a transaction's events reach the outbox with its
writes or not at all, and a joined transaction takes them into the caller's commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts.envelope import decode_envelope
from contracts.events import MessageRead
from servicekit.postgres import Pool
from servicekit.unit_of_work import PostgresUnitOfWork, Work

pytestmark = pytest.mark.integration

PRODUCER = "kit-tests"


def read_up_to(seq: int) -> MessageRead:
    return MessageRead(
        conversation_id=uuid.uuid4(), user_id=uuid.uuid4(), seq=seq, read_at=datetime.now(UTC)
    )


async def write_effect(work: Work, note: str) -> None:
    await work.conn.execute(
        "INSERT INTO kit_effects (event_id, note) VALUES ($1, $2)", uuid.uuid4(), note
    )


async def outbox(pool: Pool) -> list[tuple[str, int]]:
    rows = await pool.fetch("SELECT payload FROM outbox ORDER BY id")
    envelopes = [decode_envelope(row["payload"]) for row in rows]
    return [(envelope.producer, envelope.data.seq) for envelope in envelopes]


async def notes(pool: Pool) -> list[str]:
    return [row["note"] for row in await pool.fetch("SELECT note FROM kit_effects")]


async def test_a_committed_transaction_writes_its_events_in_the_order_emitted(pool: Pool) -> None:
    uow = PostgresUnitOfWork(pool, PRODUCER)

    async with uow.transaction() as work:
        await write_effect(work, "state")
        work.emit(read_up_to(1))
        work.emit(read_up_to(2), read_up_to(3))

    assert await outbox(pool) == [(PRODUCER, 1), (PRODUCER, 2), (PRODUCER, 3)]
    assert await notes(pool) == ["state"]


async def test_a_transaction_that_raises_leaves_neither_its_writes_nor_its_events(
    pool: Pool,
) -> None:
    uow = PostgresUnitOfWork(pool, PRODUCER)

    with pytest.raises(LookupError):
        async with uow.transaction() as work:
            await write_effect(work, "state")
            work.emit(read_up_to(1))
            raise LookupError("refused after the write")

    assert await outbox(pool) == []
    assert await notes(pool) == []


async def test_a_joined_transaction_commits_and_rolls_back_with_its_holder(pool: Pool) -> None:
    uow = PostgresUnitOfWork(pool, PRODUCER)

    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO kit_effects (event_id, note) VALUES ($1, 'inbox')", uuid.uuid4()
        )
        async with uow.joining(conn) as work:
            await write_effect(work, "joined")
            work.emit(read_up_to(7))
    with pytest.raises(LookupError):
        async with pool.acquire() as conn, conn.transaction():
            async with uow.joining(conn) as work:
                work.emit(read_up_to(8))
            raise LookupError("the holder fails after the joined block")

    assert await outbox(pool) == [(PRODUCER, 7)]
    assert sorted(await notes(pool)) == ["inbox", "joined"]
