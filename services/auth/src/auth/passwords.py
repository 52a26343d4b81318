"""bcrypt, off the event loop: a hash costs ~0.25 s of CPU at cost 12, and a login storm must
not stall the other requests a process serves."""

from __future__ import annotations

import asyncio

import bcrypt

# bcrypt ignores everything after 72 bytes; longer passwords are refused, never truncated.
MAX_PASSWORD_BYTES = 72


class PasswordHasher:
    def __init__(self, rounds: int) -> None:
        self._rounds = rounds
        self._dummy_hash: bytes | None = None

    async def hash(self, password: str) -> str:
        hashed = await asyncio.to_thread(self._hash_now, password)
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Compare; with no hash (unknown account) a dummy one is checked, so both cost alike."""
        if password_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(self._hash_now, "no such account")
            await asyncio.to_thread(bcrypt.checkpw, password.encode(), self._dummy_hash)
            return False
        return await asyncio.to_thread(bcrypt.checkpw, password.encode(), password_hash.encode())

    async def warm_up(self) -> None:
        """Compute the dummy hash at start, so the first unknown-account login is not faster."""
        await self.verify("", None)

    def _hash_now(self, password: str) -> bytes:
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(self._rounds))
