"""What a user does in a conversation besides sending: typing, opening and closing it.

Each is relayed through the bus as a ``ConversationActivity``, since the room's other sockets
may be on any instance. Typing and presence may be dropped under pressure; messages never are.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from contracts.events import ActivityKind, ConversationActivity
from gateway.domain import Refused, SocketUser
from gateway.ports import EventBus, Memberships, PresenceStore, SocketRooms
from gateway.rooms import conversation_room
from servicekit.amqp.publisher import PublishFailedError
from servicekit.logs import get_logger

_log = get_logger("gateway.conversation_activity")

TYPING_SECONDS = 5.0


class ConversationActivities:
    def __init__(
        self,
        *,
        memberships: Memberships,
        bus: EventBus,
        rooms: SocketRooms,
        presence: PresenceStore,
        typing_seconds: float = TYPING_SECONDS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._memberships = memberships
        self._bus = bus
        self._rooms = rooms
        self._presence = presence
        self._typing_seconds = typing_seconds
        self._now = now
        self._typing: dict[tuple[str, uuid.UUID], asyncio.Task[None]] = {}

    async def start_typing(self, sid: str, user: SocketUser, conversation_id: uuid.UUID) -> None:
        await self._relay(sid, user, conversation_id, "typing")
        key = (sid, conversation_id)
        if (expiring := self._typing.pop(key, None)) is not None:
            expiring.cancel()
        self._typing[key] = asyncio.create_task(
            self._typing_expires(sid, user.user_id, conversation_id)
        )

    async def stop_typing(self, sid: str, user: SocketUser, conversation_id: uuid.UUID) -> None:
        if (expiring := self._typing.pop((sid, conversation_id), None)) is not None:
            expiring.cancel()
        await self._relay(sid, user, conversation_id, "stopped-typing")

    async def open(self, sid: str, user: SocketUser, conversation_id: uuid.UUID) -> None:
        await self._member(user, conversation_id)
        await self._rooms.enter(sid, conversation_room(conversation_id))
        await self._presence.viewing(user.user_id, sid, conversation_id)
        await self._relay(sid, user, conversation_id, "joined")

    async def close(self, sid: str, user: SocketUser, conversation_id: uuid.UUID) -> None:
        # The socket stays in the conversation's room: closing a conversation's screen must not
        # stop its messages reaching the conversation list (the room is left on removal only).
        await self._relay(sid, user, conversation_id, "left")
        await self._presence.stopped_viewing(user.user_id, sid, conversation_id)

    async def socket_gone(self, sid: str, user: SocketUser) -> None:
        """A socket that drops while typing stops typing."""
        for key in [key for key in self._typing if key[0] == sid]:
            self._typing.pop(key).cancel()
            await self._publish(sid, user.user_id, key[1], "stopped-typing")

    async def _typing_expires(
        self, sid: str, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> None:
        """A client that stops typing without saying so stops by itself."""
        await asyncio.sleep(self._typing_seconds)
        self._typing.pop((sid, conversation_id), None)
        await self._publish(sid, user_id, conversation_id, "stopped-typing")

    async def _member(self, user: SocketUser, conversation_id: uuid.UUID) -> None:
        if not await self._memberships.is_member(conversation_id, user.user_id, user.token):
            raise Refused("not_found", "no such conversation")

    async def _relay(
        self, sid: str, user: SocketUser, conversation_id: uuid.UUID, kind: ActivityKind
    ) -> None:
        await self._member(user, conversation_id)
        if not await self._publish(sid, user.user_id, conversation_id, kind):
            raise Refused("internal", "not delivered; retry")

    async def _publish(
        self, sid: str, user_id: uuid.UUID, conversation_id: uuid.UUID, kind: ActivityKind
    ) -> bool:
        activity = ConversationActivity(
            conversation_id=conversation_id,
            user_id=user_id,
            kind=kind,
            origin_socket=sid,
            at=self._now(),
        )
        try:
            await self._bus.publish(activity)
        except PublishFailedError as error:
            _log.warning("activity_not_published", error=str(error))
            return False
        return True
