"""``presence:get``: who of the asked users is online, as far as the asker may know."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.sockets import PresenceFound, PresenceGetPayload, PresenceState
from gateway.domain import SocketUser
from gateway.ports import Audience, PresenceStore


class PresenceLookup:
    def __init__(self, audience: Audience, presence: PresenceStore) -> None:
        self._audience = audience
        self._presence = presence

    async def find(self, user: SocketUser, payload: PresenceGetPayload) -> PresenceFound:
        """Users the asker has not engaged with, or who blocked them (or whom they blocked),
        are ``notFound``, as unknown ones are: presence passes only between engaged users."""
        visible = await self._audience.visible_to(user.user_id, payload.user_ids)
        hidden = [i for i in dict.fromkeys(payload.user_ids) if i not in visible]
        states = await self._presence.online([i for i in payload.user_ids if i in visible])
        return PresenceFound(
            not_found=hidden,
            presence={
                user_id: PresenceState(
                    online=seen is None,
                    last_seen_at=None if not seen else datetime.fromtimestamp(seen, UTC),
                )
                for user_id, seen in states.items()
            },
        )
