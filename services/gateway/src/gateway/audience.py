"""Whom a user's presence concerns: the conversations they belong to, kept in Redis.

``gw:audience:<user>`` holds the ids of the user's conversations: written whole when a socket
of theirs connects, extended and shrunk by every membership event (each instance applies them;
the writes are idempotent), so it is current for users who are offline too. Any instance reads
it: to address ``user:online``/``user:offline`` (also for a user whose instance died), and to
decide whose presence a ``presence:get`` may see: only users who share a conversation with the
caller. It lives as long as a last-seen time (30 days after its last change).

``gw:blocks:<user>`` holds the blocks the user is part of, either way, as ``<blocker>:<blocked>``
pairs (so lifting one of two opposite blocks leaves the other): no presence passes between the
two ends of a pair, whatever conversations they share. Kept by ``contact.blocked`` and
``contact.unblocked``; and when a user connects, their own blocks (which chat lists to them,
never who blocked them) are rewritten at both ends, repairing an event no gateway was up for.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from servicekit.redis_store import KeySpace, Redis

AUDIENCE_SECONDS = 30 * 24 * 3600


class PresenceAudience:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys

    def _key(self, user_id: UUID) -> str:
        return self._keys.key("gw", "audience", str(user_id))

    def _blocks_key(self, user_id: UUID) -> str:
        return self._keys.key("gw", "blocks", str(user_id))

    async def remember(self, user_id: UUID, conversation_ids: Iterable[UUID]) -> None:
        key = self._key(user_id)
        members = [str(i) for i in conversation_ids]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if members:
                pipe.sadd(key, *members)
            pipe.expire(key, AUDIENCE_SECONDS)
            await pipe.execute()

    async def remember_blocks(self, blocker_id: UUID, blocked_ids: Iterable[UUID]) -> None:
        """The user's own blocks as they are now: new ones added and lifted ones removed, at
        both ends; blocks of the user by others are left as they are."""
        mine = f"{blocker_id}:"
        own_key = self._blocks_key(blocker_id)
        stored = await self._redis.smembers(own_key)
        current = {_pair(blocker_id, blocked): blocked for blocked in blocked_ids}
        stale = {
            pair
            for raw in stored
            if (pair := raw.decode() if isinstance(raw, bytes) else raw).startswith(mine)
        } - set(current)
        if not stale and not current:
            return  # the common case: one round trip per connect
        async with self._redis.pipeline(transaction=False) as pipe:
            for pair in stale:
                pipe.srem(own_key, pair)
                pipe.srem(self._blocks_key(UUID(pair.partition(":")[2])), pair)
            for pair, blocked in current.items():
                for end in (own_key, self._blocks_key(blocked)):
                    pipe.sadd(end, pair)
                    pipe.expire(end, AUDIENCE_SECONDS)
            await pipe.execute()

    async def blocked(self, blocker_id: UUID, blocked_id: UUID) -> None:
        pair = _pair(blocker_id, blocked_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in (blocker_id, blocked_id):
                pipe.sadd(self._blocks_key(user_id), pair)
                pipe.expire(self._blocks_key(user_id), AUDIENCE_SECONDS)
            await pipe.execute()

    async def unblocked(self, blocker_id: UUID, blocked_id: UUID) -> None:
        pair = _pair(blocker_id, blocked_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in (blocker_id, blocked_id):
                pipe.srem(self._blocks_key(user_id), pair)
            await pipe.execute()

    async def hidden_from(self, user_id: UUID) -> list[UUID]:
        """Who must not learn the user's presence: the other end of each of their blocks."""
        pairs = await self._redis.smembers(self._blocks_key(user_id))
        others: dict[UUID, None] = {}
        for raw in pairs:
            blocker, _, blocked = (raw.decode() if isinstance(raw, bytes) else raw).partition(":")
            other = blocked if blocker == str(user_id) else blocker
            others[UUID(other)] = None
        return list(others)

    async def joined(self, user_ids: Iterable[UUID], conversation_id: UUID) -> None:
        """``user_ids`` now belong to ``conversation_id`` (one round trip for all of them)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                key = self._key(user_id)
                pipe.sadd(key, str(conversation_id))
                pipe.expire(key, AUDIENCE_SECONDS)
            await pipe.execute()

    async def left(self, user_id: UUID, conversation_id: UUID) -> None:
        await self._redis.srem(self._key(user_id), str(conversation_id))

    async def conversations(self, user_id: UUID) -> list[UUID]:
        members = await self._redis.smembers(self._key(user_id))
        return [UUID(m.decode() if isinstance(m, bytes) else m) for m in members]

    async def visible_to(self, viewer_id: UUID, user_ids: list[UUID]) -> set[UUID]:
        """Those of ``user_ids`` who share a conversation with ``viewer_id`` (and the viewer)."""
        others = [user_id for user_id in dict.fromkeys(user_ids) if user_id != viewer_id]
        visible = {viewer_id} & set(user_ids)
        if not others:
            return visible
        viewer = self._key(viewer_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in others:
                pipe.sintercard(2, [viewer, self._key(user_id)], limit=1)
            pairs = [
                pair
                for user_id in others
                for pair in (_pair(viewer_id, user_id), _pair(user_id, viewer_id))
            ]
            pipe.smismember(self._blocks_key(viewer_id), pairs)
            *shared, blocked = await pipe.execute()
        return visible | {
            user_id
            for index, (user_id, count) in enumerate(zip(others, shared, strict=True))
            if count and not (blocked[2 * index] or blocked[2 * index + 1])
        }


def _pair(blocker_id: UUID, blocked_id: UUID) -> str:
    return f"{blocker_id}:{blocked_id}"
