"""Rebuilding Redis' revocation keys from auth's durable record after Redis lost them.

Every service refuses tokens while ``auth:revoked:complete`` is missing (``servicekit.tokens``).
Each auth instance looks for the marker every ``CHECK_SECONDS`` and, when it is gone, writes
the keys of every session revoked and every account deleted within the last access-token
lifetime (no older token is still alive), with their remaining time, and the marker, in one
Redis transaction. Several instances rebuilding at once write the same keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from auth.repository import AccountRepository
from servicekit.logs import get_logger
from servicekit.postgres import Pool
from servicekit.tokens import RevocationList

CHECK_SECONDS = 1.0

_log = get_logger("auth.revocation_rebuild")


class RevocationRebuilder:
    def __init__(
        self,
        *,
        pool: Pool,
        accounts: AccountRepository,
        revocations: RevocationList,
        access_token_seconds: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._accounts = accounts
        self._revocations = revocations
        self._lifetime = timedelta(seconds=access_token_seconds)
        self._clock = clock

    async def ensure(self) -> bool:
        """Rebuild if the marker is missing; whether it was."""
        if await self._revocations.is_complete():
            return False
        await self.rebuild()
        return True

    async def rebuild(self) -> None:
        now = self._clock()
        since = now - self._lifetime
        async with self._pool.acquire() as conn:
            sessions, users = await self._accounts.revoked_since(conn, since)
            await self._accounts.forget_deletions_before(conn, since)
        await self._revocations.rebuild(
            [(session_id, self._remaining(at, now)) for session_id, at in sessions],
            [(user_id, self._remaining(at, now)) for user_id, at in users],
        )
        _log.warning("revocations_rebuilt", sessions=len(sessions), users=len(users))

    async def watch(self) -> None:
        """Until cancelled: rebuild whenever the marker is found missing."""
        while True:
            try:
                await self.ensure()
            except Exception:
                _log.exception("revocation_rebuild_failed")
            await asyncio.sleep(CHECK_SECONDS)

    def _remaining(self, at: datetime, now: datetime) -> int:
        return int((at + self._lifetime - now).total_seconds()) + 1
