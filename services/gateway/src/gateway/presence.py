"""Presence across every instance, in Redis: a user is online while any socket of theirs is.

Each socket is an entry in its user's sorted set ``presence:sockets:<user>``, scored with the
time it expires; the instance holding the socket pushes that time forward every heartbeat. So
a crashed instance's sockets simply stop being renewed and count as gone within the TTL.
``presence:online`` indexes online users by their latest expiry; every instance sweeps it for
users whose sockets all expired. Each transition (first socket, last socket gone) is decided
by one Lua script, so exactly one caller sees it and publishes it, however many race.
``presence:viewing:<user>`` records which conversation each socket has open (between
``conversation:join`` and ``conversation:leave``), so the workers can tell a recipient who is
looking at a conversation from one who is merely online. The key layout is
``servicekit.presence_keys``, shared with those readers.
"""

from __future__ import annotations

import time
from uuid import UUID

from servicekit.presence_keys import PresenceKeys
from servicekit.redis_store import KeySpace, Redis

TTL_SECONDS = 60
HEARTBEAT_SECONDS = 20

_CONNECT = """
local live = redis.call('ZCOUNT', KEYS[1], ARGV[3], '+inf')
if live >= tonumber(ARGV[6]) then return -1 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local seen = redis.call('ZSCORE', KEYS[2], ARGV[5])
if seen == false or tonumber(seen) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
end
if live == 0 then return 1 end
return 0
"""

_DISCONNECT = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if redis.call('ZCOUNT', KEYS[1], ARGV[2], '+inf') > 0 then return 0 end
if redis.call('ZREM', KEYS[2], ARGV[3]) == 1 then
    redis.call('SET', KEYS[3], ARGV[2], 'EX', 2592000)
    return 1
end
return 0
"""

_SWEEP = """
local gone = {}
local candidates = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
for _, user in ipairs(candidates) do
    local sockets = ARGV[2] .. user
    if redis.call('ZCOUNT', sockets, ARGV[1], '+inf') == 0 then
        if redis.call('ZREM', KEYS[1], user) == 1 then
            redis.call('DEL', sockets)
            redis.call('DEL', ARGV[4] .. user)
            redis.call('SET', ARGV[3] .. user, ARGV[1], 'EX', 2592000)
            table.insert(gone, user)
        end
    end
end
return gone
"""

_STOP_VIEWING = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


class TooManySockets(Exception):
    """The user has as many live sockets as one user may have."""


class Presence:
    def __init__(self, redis: Redis, keys: KeySpace, max_sockets_per_user: int = 20) -> None:
        self._redis = redis
        self._keys = PresenceKeys(keys)
        self._max_sockets = max_sockets_per_user
        self._connect = redis.register_script(_CONNECT)
        self._disconnect = redis.register_script(_DISCONNECT)
        self._sweep = redis.register_script(_SWEEP)
        self._stop_viewing = redis.register_script(_STOP_VIEWING)

    async def connected(self, user_id: UUID, sid: str) -> bool:
        """Record the socket; True when it made the user online. Raises
        :class:`TooManySockets` (recording nothing) when the user already has as many live
        sockets as one may, on every instance together."""
        max_sockets = self._max_sockets
        now = time.time()
        became = int(
            await self._connect(
                keys=[self._keys.sockets(user_id), self._keys.online],
                args=[sid, now + TTL_SECONDS, now, TTL_SECONDS * 2, str(user_id), max_sockets],
            )
        )
        if became < 0:
            raise TooManySockets(max_sockets)
        return bool(became)

    async def disconnected(self, user_id: UUID, sid: str) -> bool:
        """Forget the socket; True when it was the user's last one."""
        went = await self._disconnect(
            keys=[
                self._keys.sockets(user_id),
                self._keys.online,
                self._keys.last_seen(user_id),
                self._keys.viewing(user_id),
            ],
            args=[sid, time.time(), str(user_id)],
        )
        return bool(went)

    async def viewing(self, user_id: UUID, sid: str, conversation_id: UUID) -> None:
        """The socket has ``conversation_id`` open (one at a time: the last one joined)."""
        key = self._keys.viewing(user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, sid, str(conversation_id))
            pipe.expire(key, TTL_SECONDS * 2)
            await pipe.execute()

    async def stopped_viewing(self, user_id: UUID, sid: str, conversation_id: UUID) -> None:
        await self._stop_viewing(
            keys=[self._keys.viewing(user_id)], args=[sid, str(conversation_id)]
        )

    async def renew(self, sockets: list[tuple[UUID, str]]) -> None:
        """Push the expiry of this instance's sockets forward (one round trip)."""
        if not sockets:
            return
        expiry = time.time() + TTL_SECONDS
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id, sid in sockets:
                pipe.zadd(self._keys.sockets(user_id), {sid: expiry}, xx=True)
                pipe.expire(self._keys.sockets(user_id), TTL_SECONDS * 2)
                pipe.expire(self._keys.viewing(user_id), TTL_SECONDS * 2)
                # xx: a socket that went away meanwhile must not bring its user back.
                pipe.zadd(self._keys.online, {str(user_id): expiry}, xx=True, gt=True)
            await pipe.execute()

    async def sweep(self) -> list[UUID]:
        """Users whose every socket expired (their instance died): each returned once."""
        gone = await self._sweep(
            keys=[self._keys.online],
            args=[
                time.time(),
                self._keys.sockets_prefix,
                self._keys.last_seen_prefix,
                self._keys.viewing(""),
            ],
        )
        return [UUID(user.decode() if isinstance(user, bytes) else user) for user in gone]

    async def online(self, user_ids: list[UUID]) -> dict[UUID, float | None]:
        """Each user's online state: None when online, else the last-seen time (or 0.0)."""
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.zcount(self._keys.sockets(user_id), now, "+inf")
                pipe.get(self._keys.last_seen(user_id))
            answers = await pipe.execute()
        result: dict[UUID, float | None] = {}
        for index, user_id in enumerate(user_ids):
            live, seen = answers[2 * index], answers[2 * index + 1]
            result[user_id] = None if live else float(seen) if seen else 0.0
        return result
