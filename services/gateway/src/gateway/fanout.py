"""This instance's share of the bus: events from its own exclusive queue, emitted to local rooms.

Every instance binds the same keys, so each receives every event and emits it to the sockets it
holds; none relays through another. A message is acked once emitted: a socket that missed it
(disconnected meanwhile) catches up with ``sync``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
import socketio
from aio_pika.abc import AbstractIncomingMessage

from contracts.envelope import decode_envelope
from contracts.errors import ContractError
from contracts.events import (
    ConversationActivity,
    ConversationCreated,
    ConversationMemberAdded,
    ConversationMemberRemoved,
    MediaProcessed,
    MessageCreated,
    MessageDeleted,
    MessageRead,
    MessageUpdated,
    NotificationCreated,
    PresenceOffline,
    PresenceOnline,
    SessionRevoked,
)
from contracts.sockets import (
    ConversationReadPayload,
    MessageDeletedPayload,
    RoomUserPayload,
    ServerEvent,
    UserOfflinePayload,
    UserOnlinePayload,
)
from gateway.memberships import MembershipDirectory
from gateway.pending_sends import PendingSends
from gateway.rooms import (
    add_user_to_room,
    conversation_room,
    local_sockets,
    remove_user_from_room,
    session_room,
    user_room,
)
from servicekit.logs import get_logger

_log = get_logger("gateway.fanout")

ACTIVITY_EVENTS = {
    "typing": ServerEvent.USER_TYPING,
    "stopped-typing": ServerEvent.USER_STOPPED_TYPING,
    "joined": ServerEvent.USER_JOINED,
    "left": ServerEvent.USER_LEFT,
}


def _builtins(value: object) -> Any:
    return msgspec.to_builtins(value)


class FanOut:
    def __init__(
        self, sio: socketio.AsyncServer, memberships: MembershipDirectory, pending: PendingSends
    ) -> None:
        self._sio = sio
        self._memberships = memberships
        self._pending = pending

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            envelope = decode_envelope(message.body)
        except ContractError as error:
            _log.error("fanout_undecodable", error=str(error))
            await message.ack()  # a fan-out copy: nothing downstream depends on it
            return
        try:
            await self.emit(envelope.data)
        except Exception:
            _log.exception("fanout_failed", event_type=envelope.type)
        await message.ack()

    async def emit(self, event: object) -> None:  # noqa: PLR0912 - one case per event type
        sio = self._sio
        match event:
            case MessageCreated(message=view):
                self._pending.stored(view)
                await sio.emit(
                    ServerEvent.MESSAGE_RECEIVED,
                    _builtins(view),
                    room=conversation_room(view.conversation_id),
                )
            case MessageUpdated(message=view):
                await sio.emit(
                    ServerEvent.MESSAGE_UPDATED,
                    _builtins(view),
                    room=conversation_room(view.conversation_id),
                )
            case MessageDeleted():
                payload = MessageDeletedPayload(
                    conversation_id=event.conversation_id,
                    message_id=event.message_id,
                    seq=event.seq,
                    deleted_at=event.deleted_at,
                )
                await sio.emit(
                    ServerEvent.MESSAGE_DELETED,
                    _builtins(payload),
                    room=conversation_room(event.conversation_id),
                )
            case MessageRead():
                read = ConversationReadPayload(
                    conversation_id=event.conversation_id, user_id=event.user_id, seq=event.seq
                )
                await sio.emit(
                    ServerEvent.CONVERSATION_READ,
                    _builtins(read),
                    room=conversation_room(event.conversation_id),
                )
            case ConversationCreated():
                room = conversation_room(event.conversation_id)
                await self._memberships.remember(event.conversation_id, event.participant_ids)
                for user_id in event.participant_ids:
                    await add_user_to_room(sio, user_id, room)
                await sio.emit(ServerEvent.CONVERSATION_CREATED, _builtins(event), room=room)
            case ConversationMemberAdded():
                await self._memberships.added(event.conversation_id, event.user_id)
                await add_user_to_room(sio, event.user_id, conversation_room(event.conversation_id))
            case ConversationMemberRemoved():
                await self._memberships.removed(event.conversation_id, event.user_id)
                await remove_user_from_room(
                    sio, event.user_id, conversation_room(event.conversation_id)
                )
            case ConversationActivity():
                who = RoomUserPayload(conversation_id=event.conversation_id, user_id=event.user_id)
                await sio.emit(
                    ACTIVITY_EVENTS[event.kind],
                    _builtins(who),
                    room=conversation_room(event.conversation_id),
                    skip_sid=event.origin_socket,
                )
            case PresenceOnline():
                await self._presence_changed(
                    event.conversation_ids,
                    event.user_id,
                    ServerEvent.USER_ONLINE,
                    UserOnlinePayload(user_id=event.user_id),
                )
            case PresenceOffline():
                await self._presence_changed(
                    event.conversation_ids,
                    event.user_id,
                    ServerEvent.USER_OFFLINE,
                    UserOfflinePayload(user_id=event.user_id, last_seen_at=event.last_seen_at),
                )
            case SessionRevoked():
                for sid in local_sockets(sio, session_room(event.session_id)):
                    await sio.disconnect(sid)
            case NotificationCreated():
                await sio.emit(
                    ServerEvent.NOTIFICATION_NEW,
                    _builtins(event),
                    room=user_room(event.recipient_id),
                )
            case MediaProcessed():
                await sio.emit(
                    ServerEvent.MEDIA_PROCESSED, _builtins(event), room=user_room(event.owner_id)
                )
            case _:
                pass

    async def _presence_changed(
        self, conversation_ids: list[UUID], user_id: UUID, name: ServerEvent, body: object
    ) -> None:
        """To those who share a conversation with the user, once per socket however many they
        share; not to the user's own sockets."""
        rooms = [conversation_room(i) for i in conversation_ids]
        if rooms:
            await self._sio.emit(
                name,
                _builtins(body),
                room=rooms,
                skip_sid=local_sockets(self._sio, user_room(user_id)),
            )
