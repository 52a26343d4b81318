"""Idempotency by event id: an event's effect is applied at most once per consumer.

With Postgres the mark and the effect share one transaction, so a redelivery after a crash either
finds the mark (the effect committed) or applies the effect (nothing committed). MongoDB effects
are marked after they succeed, so they must themselves be keyed on the event (upserts), which
makes a repeat after a crash between effect and mark harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from uuid import UUID

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.postgres import Connection, Pool


class Inbox[Tx](Protocol):
    async def apply_once(
        self, consumer: str, event_id: UUID, effect: Callable[[Tx], Awaitable[None]]
    ) -> bool:
        """Run ``effect`` unless this consumer already applied ``event_id``; True if it ran."""
        ...


class PostgresInbox:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def apply_once(
        self, consumer: str, event_id: UUID, effect: Callable[[Connection], Awaitable[None]]
    ) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            # A concurrent duplicate blocks on the key until this commits, then finds it.
            fresh = await conn.fetchval(
                """
                INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
                ON CONFLICT DO NOTHING RETURNING true
                """,
                consumer,
                event_id,
            )
            if not fresh:
                return False
            await effect(conn)
            return True


class MongoInbox:
    COLLECTION = "processed_events"

    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._events = database[self.COLLECTION]

    async def apply_once(
        self, consumer: str, event_id: UUID, effect: Callable[[None], Awaitable[None]]
    ) -> bool:
        key = f"{consumer}:{event_id}"
        if await self._events.find_one({"_id": key}, projection={"_id": 1}) is not None:
            return False
        await effect(None)
        try:
            await self._events.insert_one({"_id": key})
        except DuplicateKeyError:
            return False
        return True


class IdempotentEffects:
    """No record at all, for effects that are idempotent by themselves: a unique key in the
    store (chat's ``(sender, clientMessageId)``) or a per-event key in the document (a
    notification's absorbed event ids). The effect runs on every delivery and must make a
    repeat change nothing; a record per event would only be a second, costlier copy of that."""

    async def apply_once(
        self, consumer: str, event_id: UUID, effect: Callable[[None], Awaitable[None]]
    ) -> bool:
        await effect(None)
        return True
