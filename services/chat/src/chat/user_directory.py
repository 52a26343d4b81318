"""Read-your-writes for chat's user directory: an id auth has issued is known at once.

Chat learns users from auth's ``user.registered`` events, which arrive a moment after the
registration. A conversation named with a user chat has not heard of yet is not refused for
that: chat asks auth (``GET /api/users/:id``, with the caller's own token, so auth decides what
the caller may see) and writes what it answers into the directory, as the event will when it
comes (the event, with the same or a newer time, simply rewrites it). Tombstones of deleted
accounts are known: those are never looked up again.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID

import msgspec

from chat.ports import UserReplica
from servicekit.peer_api import PeerApi
from servicekit.unit_of_work import UnitOfWork

LOOKUPS_AT_ONCE = 8


class _PublicUser(msgspec.Struct):
    id: UUID
    username: str
    display_name: str = msgspec.field(name="displayName")
    created_at: datetime = msgspec.field(name="createdAt")


class _UserResponse(msgspec.Struct):
    user: _PublicUser


class UserDirectory:
    def __init__(self, uow: UnitOfWork, users: UserReplica, auth: PeerApi) -> None:
        self._uow = uow
        self._users = users
        self._auth = auth
        self._lookups = asyncio.Semaphore(LOOKUPS_AT_ONCE)

    async def learn_missing(self, token: str, user_ids: list[UUID]) -> None:
        """Ask auth for the users of ``user_ids`` the directory has never heard of, and keep
        those it knows. Ids auth does not know stay unknown (the caller's check refuses them).
        Raises ``PeerUnavailableError`` if auth cannot be asked."""
        async with self._uow.reading() as work:
            missing = await self._users.never_heard_of(work.conn, user_ids)
        if not missing:
            return
        found = await asyncio.gather(*(self._lookup(token, user_id) for user_id in missing))
        users = [user for user in found if user is not None]
        if users:
            async with self._uow.transaction() as work:
                for user in users:
                    await self._users.upsert_user(
                        work.conn, user.id, user.username, user.display_name, user.created_at
                    )

    async def _lookup(self, token: str, user_id: UUID) -> _PublicUser | None:
        async with self._lookups:
            body = await self._auth.get_as(token, f"/api/users/{user_id}")
        return None if body is None else msgspec.json.decode(body, type=_UserResponse).user
