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
from chat.ports import People
from contracts.events import ContactBlocked, ContactUnblocked
from servicekit.refusals import FieldError, InvalidInput, NotFound
from servicekit.unit_of_work import UnitOfWork


class BlockService:
    def __init__(
        self,
        *,
        uow: UnitOfWork,
        store: People,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._store = store
        self._clock = clock

    async def block(self, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
        """Idempotent: blocking twice changes nothing and publishes nothing more."""
        if blocker_id == blocked_id:
            raise InvalidInput([FieldError("userId", "you cannot block yourself")])
        now = self._clock()
        async with self._uow.transaction() as work:
            if not await self._store.live_user(work.conn, blocked_id):
                raise NotFound("No such user")
            if await self._store.block(work.conn, blocker_id, blocked_id, now):
                work.emit(ContactBlocked(blocker_id=blocker_id, blocked_id=blocked_id, at=now))

    async def unblock(self, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
        now = self._clock()
        async with self._uow.transaction() as work:
            if not await self._store.unblock(work.conn, blocker_id, blocked_id):
                raise NotFound("You have not blocked this user")
            work.emit(ContactUnblocked(blocker_id=blocker_id, blocked_id=blocked_id, at=now))

    async def blocks(self, blocker_id: uuid.UUID) -> BlockList:
        async with self._uow.reading() as work:
            found = await self._store.blocked_by(work.conn, blocker_id)
        return BlockList(
            blocks=[BlockedUser(user_id=user_id, blocked_at=at) for user_id, at in found]
        )
