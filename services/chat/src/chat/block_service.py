"""Blocking: a user keeps another away from them (docs/chat.md, "Blocking").

A block hides presence both ways (the gateways learn of it from ``contact.blocked``) and bars
a direct conversation between the two: neither can open one, add the other to a group, or
write in the direct conversation they already have. Group conversations they share go on.
The blocked user is not told; what they meet reads as it would for any unknown person.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from chat.api import BlockedUser, BlockList
from chat.config import SERVICE
from chat.people_repository import PeopleRepository
from contracts import make_envelope
from contracts.events import ContactBlocked, ContactUnblocked
from servicekit.outbox import add_to_outbox
from servicekit.postgres import Pool
from servicekit.problems import FieldError, not_found, validation_problem


class BlockService:
    def __init__(
        self,
        *,
        pool: Pool,
        store: PeopleRepository,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock

    async def block(self, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
        """Idempotent: blocking twice changes nothing and publishes nothing more."""
        if blocker_id == blocked_id:
            raise validation_problem([FieldError("userId", "you cannot block yourself")])
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            if not await self._store.live_user(conn, blocked_id):
                raise not_found("No such user")
            if await self._store.block(conn, blocker_id, blocked_id, now):
                event = ContactBlocked(blocker_id=blocker_id, blocked_id=blocked_id, at=now)
                await add_to_outbox(conn, [make_envelope(event, producer=SERVICE)])

    async def unblock(self, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            if not await self._store.unblock(conn, blocker_id, blocked_id):
                raise not_found("You have not blocked this user")
            event = ContactUnblocked(blocker_id=blocker_id, blocked_id=blocked_id, at=now)
            await add_to_outbox(conn, [make_envelope(event, producer=SERVICE)])

    async def blocks(self, blocker_id: uuid.UUID) -> BlockList:
        async with self._pool.acquire() as conn:
            found = await self._store.blocked_by(conn, blocker_id)
        return BlockList(
            blocks=[BlockedUser(user_id=user_id, blocked_at=at) for user_id, at in found]
        )
