"""Token buckets in Redis: smooth limits on a stream of events, shared by every instance.

A bucket holds up to ``capacity`` tokens and refills at ``per_second``; an event takes one
token from every bucket it is checked against (a socket's and its user's, say) or from none,
decided atomically in one Lua call, so a burst is allowed up to the capacity and the sustained
rate never exceeds the refill. Buckets idle long enough to be full are simply absent.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from servicekit.rate_limit import Decision
from servicekit.redis_store import KeySpace, Redis

# KEYS: the buckets. ARGV: now, then (capacity, per_second) per bucket.
_TAKE = """
local now = tonumber(ARGV[1])
local wait = 0
local levels = {}
for i, key in ipairs(KEYS) do
    local capacity = tonumber(ARGV[2 * i])
    local rate = tonumber(ARGV[2 * i + 1])
    local state = redis.call('HMGET', key, 'tokens', 'at')
    local tokens = tonumber(state[1]) or capacity
    local at = tonumber(state[2]) or now
    tokens = math.min(capacity, tokens + (now - at) * rate)
    levels[i] = tokens
    if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
end
if wait > 0 then return {0, tostring(wait)} end
local least = nil
for i, key in ipairs(KEYS) do
    local capacity = tonumber(ARGV[2 * i])
    local rate = tonumber(ARGV[2 * i + 1])
    local left = levels[i] - 1
    redis.call('HSET', key, 'tokens', tostring(left), 'at', ARGV[1])
    redis.call('PEXPIRE', key, math.ceil((capacity - left) / rate * 1000) + 1000)
    if least == nil or left < least then least = left end
end
return {1, tostring(least)}
"""


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    capacity: int
    per_second: float


class TokenBuckets:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._keys = keys
        self._take = redis.register_script(_TAKE)

    async def take(self, checks: list[tuple[Bucket, str]]) -> Decision:
        """One token from each ``(bucket, subject)``, or none if any is empty."""
        args: list[float | str] = [f"{time.time():.6f}"]
        for bucket, _ in checks:
            args += [bucket.capacity, bucket.per_second]
        allowed, value = await self._take(
            keys=[self._key(bucket, subject) for bucket, subject in checks], args=args
        )
        if int(allowed):
            return Decision(allowed=True, remaining=int(float(value)), retry_after_seconds=0)
        return Decision(
            allowed=False, remaining=0, retry_after_seconds=max(1, math.ceil(float(value)))
        )

    def _key(self, bucket: Bucket, subject: str) -> str:
        digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
        return self._keys.key("bucket", bucket.name, digest)
