"""Redis restarted empty (or was flushed, or failed over to a replica that had not caught up):
what this instance wrote there for the sockets it holds is gone, though the sockets are not.

Each instance keeps a marker key of its own (``gw:instance:<id>``). The presence heartbeat
sets it if absent; finding it absent after the first time means Redis lost what this
instance wrote, and the instance writes it again for every socket it holds: the presence
entries, the presence audience and the block pairs (asking chat with each user's token, as a
connect does). The record of stored sends needs nothing (chat answers a resend it had stored
with ``message.already_stored``), rate limits start full, the membership cache fills on
demand, and revocations are auth's to rebuild. Which conversation a socket has open
(``conversation:join``) is not restored: the client's next join writes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from gateway.audience import PresenceAudience
from gateway.chat_client import ChatClient, ChatUnavailableError
from gateway.presence import Presence, TooManySockets
from servicekit.logs import get_logger
from servicekit.redis_store import KeySpace, Redis

MARKER_TTL_SECONDS = 24 * 3600
_log = get_logger("gateway.lost_state")


class HeldSocket(Protocol):
    @property
    def user_id(self) -> UUID: ...

    @property
    def token(self) -> str: ...


class LostStateRestore:
    def __init__(
        self,
        *,
        redis: Redis,
        keys: KeySpace,
        instance_id: str,
        presence: Presence,
        audience: PresenceAudience,
        chat: ChatClient,
    ) -> None:
        self._redis = redis
        self._marker = keys.key("gw", "instance", instance_id)
        self._presence = presence
        self._audience = audience
        self._chat = chat
        self._checked = False

    async def lost(self) -> bool:
        """Whether Redis lost this instance's writes since the last check."""
        created = await self._redis.set(self._marker, "1", nx=True, ex=MARKER_TTL_SECONDS)
        if not created:
            await self._redis.expire(self._marker, MARKER_TTL_SECONDS)
        first, self._checked = not self._checked, True
        return bool(created) and not first

    async def restore(self, sockets: Sequence[tuple[str, HeldSocket]]) -> None:
        users: dict[UUID, HeldSocket] = {}
        for sid, held in sockets:
            users.setdefault(held.user_id, held)
            # More sockets than allowed came back: the rest stay unlisted.
            with contextlib.suppress(TooManySockets):
                await self._presence.connected(held.user_id, sid)
        restored = 0
        for user_id, held in users.items():
            try:
                listed = await self._chat.conversation_ids(held.token)
            except ChatUnavailableError as error:
                _log.warning("lost_state_not_restored", user_id=str(user_id), error=str(error))
                continue
            await self._audience.remember(user_id, listed.engaged_ids)
            await self._audience.remember_blocks(user_id, listed.blocked_ids)
            restored += 1
        _log.warning(
            "redis_state_restored", sockets=len(sockets), users=len(users), restored=restored
        )
