"""Presence made visible by taking part: when a user first takes part in a conversation
(``conversation.engaged``), they and the conversation's other members who took part now see
each other's presence, so each side is told the other's state at once instead of learning it
only from the next change or a ``presence:get``.

Every instance handles the event and emits to its own sockets only (the users' rooms), so a
socket hears it once whichever instance holds it. The members come from the membership cache;
a conversation whose members are not cached is skipped (clients still have ``presence:get``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from contracts.sockets import ServerEvent, UserOfflinePayload, UserOnlinePayload
from contracts.wire import WireStruct
from gateway.audience import PresenceAudience
from gateway.memberships import MembershipDirectory
from gateway.presence import Presence
from gateway.room_broadcast import RoomBroadcast
from gateway.rooms import user_room


class EngagedPresence:
    def __init__(
        self,
        broadcast: RoomBroadcast,
        audience: PresenceAudience,
        presence: Presence,
        memberships: MembershipDirectory,
    ) -> None:
        self._broadcast = broadcast
        self._audience = audience
        self._presence = presence
        self._memberships = memberships

    async def announce(self, conversation_id: UUID, user_id: UUID) -> None:
        members = await self._memberships.cached_members(conversation_id)
        others = [member for member in members if member != user_id]
        if not others:
            return
        visible = sorted((await self._audience.visible_to(user_id, others)) - {user_id})
        if not visible:
            return
        states = await self._presence.online([user_id, *visible])
        for other in visible:
            self._tell([user_room(user_id)], other, states[other])
        self._tell([user_room(other) for other in visible], user_id, states[user_id])

    def _tell(self, rooms: list[str], user_id: UUID, seen: float | None) -> None:
        event: tuple[ServerEvent, WireStruct] | None = None
        if seen is None:
            event = ServerEvent.USER_ONLINE, UserOnlinePayload(user_id=user_id)
        elif seen:  # 0.0: never seen online, nothing to say
            at = datetime.fromtimestamp(seen, UTC)
            event = ServerEvent.USER_OFFLINE, UserOfflinePayload(user_id=user_id, last_seen_at=at)
        if event is not None:
            self._broadcast.send(event[0], event[1], rooms, droppable=True)
