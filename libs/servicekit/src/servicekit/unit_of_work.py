"""A unit of work on Postgres: one transaction, and the events it causes written to the outbox
in it, so a state change and its event commit together or not at all.

Services take the ``UnitOfWork`` protocol and hand ``Work.conn`` to their repositories; unit
tests pass a fake whose ``conn`` their fake repositories ignore. A use case that runs in a
transaction it did not open (a queue consumer's, which marks the event applied in it) joins it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from contracts import make_envelope
from contracts.wire import Event
from servicekit.outbox import add_to_outbox
from servicekit.postgres import Connection, Pool


@dataclass
class Work:
    """What a transaction's use case holds: the connection its repositories run on, and the
    events it has caused so far."""

    conn: Any
    events: list[Event] = field(default_factory=list)

    def emit(self, *events: Event) -> None:
        """Published once the transaction commits (through the outbox), never if it rolls back."""
        self.events.extend(events)


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Work]:
        """Every write of the block in one transaction, its events with it."""
        ...

    def reading(self) -> AbstractAsyncContextManager[Work]:
        """Reads outside a transaction (one connection, no events)."""
        ...

    def joining(self, conn: Any) -> AbstractAsyncContextManager[Work]:
        """The block's writes and events in the transaction the caller holds open on ``conn``
        (which commits or rolls back with the caller)."""
        ...


class PostgresUnitOfWork:
    def __init__(self, pool: Pool, producer: str) -> None:
        self._pool = pool
        self._producer = producer

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Work]:
        async with self._pool.acquire() as conn, conn.transaction():
            work = Work(conn)
            yield work
            await self._write_events(work)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Work]:
        async with self._pool.acquire() as conn:
            yield Work(conn)

    @contextlib.asynccontextmanager
    async def joining(self, conn: Connection) -> AsyncIterator[Work]:
        work = Work(conn)
        yield work
        await self._write_events(work)

    async def _write_events(self, work: Work) -> None:
        if work.events:
            await add_to_outbox(
                work.conn,
                [make_envelope(event, producer=self._producer) for event in work.events],
            )


class RecordingUnitOfWork:
    """A unit of work with no database, for unit tests of use cases on fakes of their ports:
    ``work.conn`` is whatever the caller joined (``None`` otherwise); the events of each block
    that ends without an exception are kept in ``events``, in order, and the block counted in
    ``commits``, one that raises in ``rollbacks``. Fakes' own writes are not undone."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.commits = 0
        self.rollbacks = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Work]:
        async with self._recorded(Work(conn=None)) as work:
            yield work

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Work]:
        yield Work(conn=None)

    @contextlib.asynccontextmanager
    async def joining(self, conn: Any) -> AsyncIterator[Work]:
        async with self._recorded(Work(conn)) as work:
            yield work

    @contextlib.asynccontextmanager
    async def _recorded(self, work: Work) -> AsyncIterator[Work]:
        try:
            yield work
        except BaseException:
            self.rollbacks += 1
            raise
        self.commits += 1
        self.events.extend(work.events)

    def take_events(self) -> list[Event]:
        """What committed since the last call."""
        events, self.events = self.events, []
        return events
