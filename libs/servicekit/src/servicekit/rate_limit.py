"""Rate limits kept in Redis, so every instance of a service counts against the same budget.

Fixed window: the first hit on a subject starts a window of ``window_seconds`` in which at most
``max_hits`` are allowed; the counter expires with the window. A client that times its bursts
can get up to twice ``max_hits`` through across a window boundary, which is fine for throttling
logins and sign-ups, not for metering.

Keys are ``ratelimit:<limit name>:<sha256 of the subject>``: the subject (an email, an IP) is
user input, so it is hashed to keep keys bounded and free of raw user data.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from servicekit.problems import ProblemError
from servicekit.redis_store import KeySpace, Redis

_SUBJECT_DIGEST_CHARS = 32

# One round trip, and atomic: no other hit lands between the count and the expiry, and a key
# never lives without a TTL (also repairs one left without, whoever wrote it).
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    max_hits: int
    window_seconds: int

    def __post_init__(self) -> None:
        if self.max_hits < 1 or self.window_seconds < 1:
            raise ValueError(f"limit {self.name!r} needs max_hits and window_seconds of 1 or more")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    """Hits still allowed in the current window."""
    retry_after_seconds: int
    """0 when allowed; otherwise whole seconds until the window ends (at least 1)."""


class RateLimiter:
    """Counts attempts per (limit, subject); ``hit`` before the work, ``reset`` on success."""

    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys
        self._hit_script = redis.register_script(_HIT_SCRIPT)

    async def hit(self, limit: Limit, subject: str) -> Decision:
        """Counts this attempt; refused once the window has seen more than ``max_hits``."""
        count, ttl_ms = await self._hit_script(
            keys=[self._key(limit, subject)], args=[limit.window_seconds * 1000]
        )
        count = int(count)
        allowed = count <= limit.max_hits
        return Decision(
            allowed=allowed,
            remaining=max(0, limit.max_hits - count),
            retry_after_seconds=0 if allowed else _retry_after(limit, int(ttl_ms)),
        )

    async def peek(self, limit: Limit, subject: str) -> Decision:
        """Whether a hit now would be allowed, without counting one."""
        key = self._key(limit, subject)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            raw_count, ttl_ms = await pipe.execute()
        count = int(raw_count) if raw_count is not None else 0
        allowed = count < limit.max_hits
        return Decision(
            allowed=allowed,
            remaining=max(0, limit.max_hits - count),
            retry_after_seconds=0 if allowed else _retry_after(limit, int(ttl_ms)),
        )

    async def reset(self, limit: Limit, subject: str) -> None:
        await self._redis.delete(self._key(limit, subject))

    def _key(self, limit: Limit, subject: str) -> str:
        digest = hashlib.sha256(subject.encode()).hexdigest()[:_SUBJECT_DIGEST_CHARS]
        return self._keys.key("ratelimit", limit.name, digest)


def too_many_requests(decision: Decision, detail: str) -> ProblemError:
    """The 429 problem for a refused decision, with ``Retry-After`` in whole seconds."""
    return ProblemError(
        429,
        detail,
        headers={"Retry-After": str(max(1, decision.retry_after_seconds))},
    )


def _retry_after(limit: Limit, ttl_ms: int) -> int:
    # -2: no key, the window is over. -1 (no expiry) cannot come from this module, and the
    # next hit gives the key one; either way, trying again in a second is honest.
    if ttl_ms < 0:
        return 1
    return min(limit.window_seconds, max(1, math.ceil(ttl_ms / 1000)))
