"""bcrypt, off the event loop: a hash costs ~0.25 s of CPU at cost 12, and a login storm must
not stall the other requests a process serves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import bcrypt

from servicekit.problems import ProblemError

# bcrypt ignores everything after 72 bytes; longer passwords are refused, never truncated.
MAX_PASSWORD_BYTES = 72


class HasherBusyError(ProblemError):
    """More bcrypt work is queued than the process will take on: 503, try again shortly."""

    def __init__(self, pending: int) -> None:
        super().__init__(
            503,
            f"{pending} password checks already queued; try again shortly",
            title="Service Unavailable",
            headers={"Retry-After": "1"},
        )


class PasswordHasher:
    def __init__(self, rounds: int, max_pending: int = 32) -> None:
        self._rounds = rounds
        self._dummy_hash: bytes | None = None
        self._max_pending = max_pending
        self._pending = 0

    async def hash(self, password: str) -> str:
        with self._admitted():
            hashed = await asyncio.to_thread(self._hash_now, password)
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Compare; with no hash (unknown account) a dummy one is checked, so both cost alike.

        A password longer than bcrypt's 72 bytes matches no account (registration refuses it, and
        bcrypt raises on it): it fails like a wrong one, at the same cost.
        """
        candidate = password.encode()
        with self._admitted():
            if password_hash is None or len(candidate) > MAX_PASSWORD_BYTES:
                if self._dummy_hash is None:
                    self._dummy_hash = await asyncio.to_thread(self._hash_now, "no such account")
                await asyncio.to_thread(
                    bcrypt.checkpw, candidate[:MAX_PASSWORD_BYTES], self._dummy_hash
                )
                return False
            return await asyncio.to_thread(bcrypt.checkpw, candidate, password_hash.encode())

    async def warm_up(self) -> None:
        """Compute the dummy hash at start, so the first unknown-account login is not faster."""
        await self.verify("", None)

    @contextlib.contextmanager
    def _admitted(self) -> Iterator[None]:
        # A queue of hashes only grows everyone's latency; past the bound, refuse fast.
        if self._pending >= self._max_pending:
            raise HasherBusyError(self._pending)
        self._pending += 1
        try:
            yield
        finally:
            self._pending -= 1

    def _hash_now(self, password: str) -> bytes:
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(self._rounds))
