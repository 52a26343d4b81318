"""Token buckets in Redis: smooth limits on a stream of events, shared by every instance.

A bucket holds up to ``capacity`` tokens and refills at ``per_second``; an event takes one
token from every bucket it is checked against (a socket's and its user's, say) or from none,
decided atomically in one Lua call, so a burst is allowed up to the capacity and the sustained
rate never exceeds the refill. Buckets idle long enough to be full are simply absent.

The bucket logic is one Lua function, ``take_tokens`` in ``TAKE_TOKENS_LUA``, so a service can
compose it into a script of its own that takes the tokens and does its other reads in the same
round trip: it passes the function the keys and arguments ``TokenBuckets.prepare`` lays out and
reads the function's reply with ``decision_of``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from servicekit.rate_limit import Decision
from servicekit.redis_store import KeySpace, Redis

# take_tokens(keys, args[, cost]): keys are the buckets; args are now (seconds, as a string),
# then (capacity, per_second) per bucket; cost (default 1) is how many tokens the event takes
# from each. Replies {1, tokens left in the emptiest bucket} or {0, seconds until every bucket
# has enough}, numbers as strings (Redis truncates Lua numbers to integers). A refusal writes
# nothing.
TAKE_TOKENS_LUA = """
local function take_tokens(keys, args, cost)
    cost = tonumber(cost) or 1
    local now = tonumber(args[1])
    local wait = 0
    local levels = {}
    for i, key in ipairs(keys) do
        local capacity = tonumber(args[2 * i])
        local rate = tonumber(args[2 * i + 1])
        local state = redis.call('HMGET', key, 'tokens', 'at')
        local tokens = tonumber(state[1]) or capacity
        local at = tonumber(state[2]) or now
        tokens = math.min(capacity, tokens + (now - at) * rate)
        levels[i] = tokens
        if tokens < cost then wait = math.max(wait, (cost - tokens) / rate) end
    end
    if wait > 0 then return {0, tostring(wait)} end
    local least = nil
    for i, key in ipairs(keys) do
        local capacity = tonumber(args[2 * i])
        local rate = tonumber(args[2 * i + 1])
        local left = levels[i] - cost
        redis.call('HSET', key, 'tokens', tostring(left), 'at', args[1])
        redis.call('PEXPIRE', key, math.ceil((capacity - left) / rate * 1000) + 1000)
        if least == nil or left < least then least = left end
    end
    return {1, tostring(least)}
end
"""

# ARGV: take_tokens's args, then the cost.
_TAKE = TAKE_TOKENS_LUA + "return take_tokens(KEYS, ARGV, ARGV[#ARGV])\n"


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    capacity: int
    per_second: float


@dataclass(frozen=True, slots=True)
class TokenTake:
    """The keys and arguments of one take, as ``take_tokens`` reads them."""

    keys: list[str]
    args: list[float | str]


class TokenBuckets:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._keys = keys
        self._take = redis.register_script(_TAKE)

    async def take(self, checks: list[tuple[Bucket, str]], cost: int = 1) -> Decision:
        """``cost`` tokens from each ``(bucket, subject)``, or none if any has too few (a cost
        above a bucket's capacity is never allowed)."""
        take = self.prepare(checks)
        reply = await self._take(keys=take.keys, args=[*take.args, cost])
        return decision_of(reply)

    def prepare(self, checks: list[tuple[Bucket, str]]) -> TokenTake:
        """The take of one token from each ``(bucket, subject)``, for a script that composes
        ``take_tokens``; the time is read now."""
        args: list[float | str] = [f"{time.time():.6f}"]
        for bucket, _ in checks:
            args += [bucket.capacity, bucket.per_second]
        return TokenTake([self._key(bucket, subject) for bucket, subject in checks], args)

    def _key(self, bucket: Bucket, subject: str) -> str:
        digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
        return self._keys.key("bucket", bucket.name, digest)


def decision_of(reply: Sequence[object]) -> Decision:
    """The decision in ``take_tokens``'s reply."""
    allowed, value = reply
    seconds_or_tokens = float(_text(value))
    if int(_text(allowed)):
        return Decision(allowed=True, remaining=int(seconds_or_tokens), retry_after_seconds=0)
    return Decision(
        allowed=False, remaining=0, retry_after_seconds=max(1, math.ceil(seconds_or_tokens))
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
