"""Who belongs to which conversation, as the gateway needs it: asked of chat, cached in Redis.

The cache holds each conversation's member set (``gw:members:<id>``) for a while; the events
that change membership update it, so a removal takes effect at once, not at expiry.
"""

from __future__ import annotations

from uuid import UUID

from gateway.chat_client import ChatClient
from servicekit.redis_store import KeySpace, Redis

# Atomic: a set that expired between a check and an add would come back holding one member.
_ADD_IF_CACHED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('SADD', KEYS[1], ARGV[1]) end
return 0
"""


class MembershipDirectory:
    def __init__(self, redis: Redis, keys: KeySpace, chat: ChatClient, ttl_seconds: int) -> None:
        self._redis = redis
        self._keys = keys
        self._chat = chat
        self._ttl = ttl_seconds
        self._add_if_cached = redis.register_script(_ADD_IF_CACHED)

    def cache_key(self, conversation_id: UUID) -> str:
        """The conversation's cached member set (a script may read it in its own call)."""
        return self._keys.key("gw", "members", str(conversation_id))

    async def is_member(self, conversation_id: UUID, user_id: UUID, token: str) -> bool:
        key = self.cache_key(conversation_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(key)
            pipe.sismember(key, str(user_id))
            cached, member = await pipe.execute()
        if cached:
            return bool(member)
        return await self.is_member_per_chat(conversation_id, token)

    async def is_member_per_chat(self, conversation_id: UUID, token: str) -> bool:
        """A cache miss: chat answers for the token's user (404 to a non-member), and the
        member set it returns is cached."""
        conversation = await self._chat.conversation(token, conversation_id)
        if conversation is None:
            return False
        await self.remember(conversation_id, [p.user_id for p in conversation.participants])
        return True

    async def cached_members(self, conversation_id: UUID) -> list[UUID]:
        """The conversation's members as cached (none when they are not)."""
        members = await self._redis.smembers(self.cache_key(conversation_id))
        return [UUID(m.decode() if isinstance(m, bytes) else m) for m in members]

    async def remember(self, conversation_id: UUID, member_ids: list[UUID]) -> None:
        key = self.cache_key(conversation_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.sadd(key, *(str(i) for i in member_ids))
            pipe.expire(key, self._ttl)
            await pipe.execute()

    async def added(self, conversation_id: UUID, user_id: UUID) -> None:
        """Only a cached set is extended: an absent one is fetched whole on the next lookup."""
        await self._add_if_cached(keys=[self.cache_key(conversation_id)], args=[str(user_id)])

    async def removed(self, conversation_id: UUID, user_id: UUID) -> None:
        await self._redis.srem(self.cache_key(conversation_id), str(user_id))
