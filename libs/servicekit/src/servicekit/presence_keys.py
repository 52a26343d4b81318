"""Where the gateway keeps presence in Redis, and the read-only question other services ask.

The gateway owns these keys and writes them (``gateway.presence``); the workers only read them,
to decide whether a recipient is looking at a conversation already. The layout lives here once
so the writer and the readers cannot drift apart:

- ``presence:sockets:<user>``: sorted set of the user's socket ids, scored with the time each
  expires unless its instance renews it (a crashed instance's sockets simply lapse);
- ``presence:viewing:<user>``: hash of socket id to the conversation that socket has open
  (``conversation:join`` until ``conversation:leave`` or disconnect);
- ``presence:online``, ``presence:last-seen:<user>``: the online index and last-seen times.
"""

from __future__ import annotations

import time
from enum import StrEnum
from uuid import UUID

from servicekit.redis_store import KeySpace, Redis


class PresenceKeys:
    def __init__(self, keys: KeySpace) -> None:
        self._keys = keys

    def sockets(self, user_id: UUID | str) -> str:
        return self._keys.key("presence", "sockets", str(user_id))

    def viewing(self, user_id: UUID | str) -> str:
        return self._keys.key("presence", "viewing", str(user_id))

    def last_seen(self, user_id: UUID | str) -> str:
        return self._keys.key("presence", "last-seen", str(user_id))

    @property
    def online(self) -> str:
        return self._keys.key("presence", "online")

    @property
    def sockets_prefix(self) -> str:
        return self._keys.key("presence", "sockets", "")

    @property
    def last_seen_prefix(self) -> str:
        return self._keys.key("presence", "last-seen", "")


class Attention(StrEnum):
    OFFLINE = "offline"
    ELSEWHERE = "elsewhere"
    """Online, but no socket has this conversation open."""
    VIEWING = "viewing"


class PresenceReader:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = PresenceKeys(keys)

    async def attention(self, user_ids: list[UUID], conversation_id: UUID) -> dict[UUID, Attention]:
        """For each user: offline, online elsewhere, or viewing ``conversation_id`` on a live
        socket; one round trip for all of them."""
        if not user_ids:
            return {}
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.zrangebyscore(self._keys.sockets(user_id), now, "+inf")
                pipe.hgetall(self._keys.viewing(user_id))
            answers = await pipe.execute()
        wanted = str(conversation_id)
        result: dict[UUID, Attention] = {}
        for index, user_id in enumerate(user_ids):
            live = {_text(sid) for sid in answers[2 * index]}
            viewing = {_text(sid): _text(c) for sid, c in answers[2 * index + 1].items()}
            if not live:
                result[user_id] = Attention.OFFLINE
            elif any(viewing.get(sid) == wanted for sid in live):
                result[user_id] = Attention.VIEWING
            else:
                result[user_id] = Attention.ELSEWHERE
        return result


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
