"""This instance's share of the bus: events from its own exclusive queue, emitted to local rooms.

Every instance binds the same keys, so each receives every event and emits it to the sockets it
holds; none relays through another. A message is acked once emitted, in batches
(``BatchedAcks``: one ack frame per loop turn, not per event): a socket that missed it
(disconnected meanwhile) catches up with ``sync``. Emits go through ``RoomBroadcast`` (one
encoding per event, no task per recipient); typing and presence are marked droppable, so a
slow socket loses those first and never a message. An envelope published twice (an outbox
replay after a Postgres crash) is emitted once (``RecentEvents``).
"""

from __future__ import annotations

from uuid import UUID

import socketio
from aio_pika.abc import AbstractIncomingMessage

from contracts.changes import ChangeEvent, client_change
from contracts.envelope import decode_envelope
from contracts.errors import ContractError
from contracts.events import (
    ContactBlocked,
    ContactUnblocked,
    ConversationActivity,
    ConversationCreated,
    ConversationEngaged,
    ConversationMemberAdded,
    ConversationMemberRemoved,
    ConversationMemberUpdated,
    ConversationUpdated,
    MediaProcessed,
    MessageAlreadyStored,
    MessageCreated,
    MessageDeleted,
    MessageRead,
    MessageRefused,
    MessageUpdated,
    NotificationCreated,
    PresenceOffline,
    PresenceOnline,
    SessionRevoked,
)
from contracts.sockets import (
    RoomUserPayload,
    ServerEvent,
    UserOfflinePayload,
    UserOnlinePayload,
)
from gateway.audience import PresenceAudience
from gateway.engaged_presence import EngagedPresence
from gateway.memberships import MembershipDirectory
from gateway.pending_sends import PendingSends
from gateway.recent_events import RecentEvents
from gateway.room_broadcast import RoomBroadcast
from gateway.rooms import (
    add_user_to_room,
    conversation_room,
    local_sockets,
    remove_user_from_room,
    session_room,
    user_room,
)
from servicekit.amqp.batched_acks import BatchedAcks
from servicekit.logs import get_logger

_log = get_logger("gateway.fanout")

ACTIVITY_EVENTS = {
    "typing": ServerEvent.USER_TYPING,
    "stopped-typing": ServerEvent.USER_STOPPED_TYPING,
    "joined": ServerEvent.USER_JOINED,
    "left": ServerEvent.USER_LEFT,
}
DROPPABLE_ACTIVITY = frozenset({"typing", "stopped-typing"})


class FanOut:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        broadcast: RoomBroadcast,
        memberships: MembershipDirectory,
        pending: PendingSends,
        audience: PresenceAudience,
        *,
        acks: BatchedAcks,
        engaged: EngagedPresence | None = None,
    ) -> None:
        self._acks = acks
        self._sio = sio
        self._broadcast = broadcast
        self._memberships = memberships
        self._pending = pending
        self._audience = audience
        self._recent = RecentEvents()
        self._engaged = engaged

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self._acks.received(message)
        try:
            envelope = decode_envelope(message.body)
        except ContractError as error:
            _log.error("fanout_undecodable", error=str(error))
            self._acks.done(message)  # a fan-out copy: nothing downstream depends on it
            return
        if not self._recent.first_time(envelope.id):
            _log.info("fanout_replay_skipped", event_type=envelope.type, event_id=str(envelope.id))
            self._acks.done(message)
            return
        try:
            await self.emit(envelope.data)
        except Exception:
            _log.exception("fanout_failed", event_type=envelope.type)
        self._acks.done(message)

    async def emit(self, event: object) -> None:  # noqa: PLR0912 - one case per event type
        send = self._broadcast.send
        match event:
            case MessageCreated(message=view):
                self._pending.stored(view)
                send(ServerEvent.MESSAGE_RECEIVED, view, conversation_room(view.conversation_id))
            case MessageAlreadyStored(message=view):
                self._pending.stored(view)  # a resend: its sender alone is answered
            case MessageRefused():
                self._pending.refused(event)
            case (
                MessageUpdated()
                | MessageDeleted()
                | MessageRead()
                | ConversationUpdated()
                | ConversationMemberUpdated()
            ):
                name, payload = client_change(event)
                send(name, payload, conversation_room(_conversation_of(event)))
            case ConversationCreated():
                room = conversation_room(event.conversation_id)
                await self._memberships.remember(event.conversation_id, event.participant_ids)
                for user_id in event.participant_ids:
                    await add_user_to_room(self._sio, user_id, room)
                # Only its creator has taken part yet: the others' presence stays theirs.
                await self._audience.joined([event.created_by], event.conversation_id)
                send(ServerEvent.CONVERSATION_CREATED, event, room)
            case ConversationMemberAdded():
                await self._member_added(event)
            case ConversationEngaged():
                await self._audience.joined([event.user_id], event.conversation_id)
                if self._engaged is not None:
                    await self._engaged.announce(event.conversation_id, event.user_id)
            case ConversationMemberRemoved():
                room = conversation_room(event.conversation_id)
                name, payload = client_change(event)
                send(name, payload, [room, user_room(event.user_id)])  # then nothing more
                await self._memberships.removed(event.conversation_id, event.user_id)
                await remove_user_from_room(self._sio, event.user_id, room)
                await self._audience.left(event.user_id, event.conversation_id)
            case ConversationActivity():
                who = RoomUserPayload(conversation_id=event.conversation_id, user_id=event.user_id)
                send(
                    ACTIVITY_EVENTS[event.kind],
                    who,
                    conversation_room(event.conversation_id),
                    skip_sid=event.origin_socket,
                    droppable=event.kind in DROPPABLE_ACTIVITY,
                )
            case PresenceOnline():
                self._presence_changed(
                    event,
                    ServerEvent.USER_ONLINE,
                    UserOnlinePayload(user_id=event.user_id),
                )
            case PresenceOffline():
                self._presence_changed(
                    event,
                    ServerEvent.USER_OFFLINE,
                    UserOfflinePayload(user_id=event.user_id, last_seen_at=event.last_seen_at),
                )
            case ContactBlocked():
                await self._audience.blocked(event.blocker_id, event.blocked_id)
            case ContactUnblocked():
                await self._audience.unblocked(event.blocker_id, event.blocked_id)
            case SessionRevoked():
                for sid in local_sockets(self._sio, session_room(event.session_id)):
                    await self._sio.disconnect(sid)
            case NotificationCreated():
                send(ServerEvent.NOTIFICATION_NEW, event, user_room(event.recipient_id))
            case MediaProcessed():
                send(ServerEvent.MEDIA_PROCESSED, event, user_room(event.owner_id))
            case _:
                pass

    async def _member_added(self, event: ConversationMemberAdded) -> None:
        """To the room and to the newcomer, whose devices also get the whole conversation
        (as ``conversation:created``)."""
        send = self._broadcast.send
        room = conversation_room(event.conversation_id)
        await self._memberships.added(event.conversation_id, event.user_id)
        await add_user_to_room(self._sio, event.user_id, room)
        name, payload = client_change(event)
        send(name, payload, [room, user_room(event.user_id)])
        if event.conversation is not None:
            snapshot = event.conversation
            created = ConversationCreated(
                conversation_id=snapshot.conversation_id,
                type=snapshot.type,
                title=snapshot.title,
                created_by=snapshot.created_by,
                participant_ids=snapshot.participant_ids,
                created_at=snapshot.created_at,
            )
            send(ServerEvent.CONVERSATION_CREATED, created, user_room(event.user_id))

    def _presence_changed(
        self, event: PresenceOnline | PresenceOffline, name: ServerEvent, body: object
    ) -> None:
        """To those who share a conversation with the user, once per socket however many they
        share; not to the user's own sockets, nor to those of anyone a block stands between."""
        rooms = [conversation_room(i) for i in event.conversation_ids]
        if rooms:
            skipped = [
                sid
                for user_id in (event.user_id, *event.hidden_from)
                for sid in local_sockets(self._sio, user_room(user_id))
            ]
            self._broadcast.send(name, body, rooms, skip_sid=skipped, droppable=True)


def _conversation_of(event: ChangeEvent) -> UUID:
    return (
        event.message.conversation_id
        if isinstance(event, MessageUpdated)
        else (event.conversation_id)
    )
