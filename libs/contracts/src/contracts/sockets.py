"""Socket.IO contract of the gateway: event names, payloads both ways, and ack shapes.

python-socketio hands handlers parsed JSON, so client payloads are validated from Python
objects (`decode_socket_payload`, strict `msgspec.convert`) rather than from bytes.
"""

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from contracts.errors import ContractError
from contracts.events import (
    ConversationCreated,
    MediaProcessed,
    MemberRole,
    MessageView,
    NotificationCreated,
)
from contracts.wire import (
    Attachments,
    ChangeSeq,
    ClientMessageId,
    MessageContent,
    Seq,
    UtcDatetime,
    WireStruct,
)


class ClientEvent(StrEnum):
    """Events a client emits; each takes an ack callback."""

    MESSAGE_SEND = "message:send"
    TYPING_START = "typing:start"
    TYPING_STOP = "typing:stop"
    CONVERSATION_JOIN = "conversation:join"
    CONVERSATION_LEAVE = "conversation:leave"
    SYNC = "sync"
    PRESENCE_GET = "presence:get"


class ServerEvent(StrEnum):
    """Events the gateway emits to clients."""

    MESSAGE_RECEIVED = "message:received"
    MESSAGE_UPDATED = "message:updated"
    MESSAGE_DELETED = "message:deleted"
    CONVERSATION_CREATED = "conversation:created"
    CONVERSATION_READ = "conversation:read"
    CONVERSATION_UPDATED = "conversation:updated"
    CONVERSATION_MEMBER_ADDED = "conversation:member-added"
    CONVERSATION_MEMBER_REMOVED = "conversation:member-removed"
    CONVERSATION_MEMBER_UPDATED = "conversation:member-updated"
    USER_TYPING = "user:typing"
    USER_STOPPED_TYPING = "user:stopped-typing"
    USER_JOINED = "user:joined"
    USER_LEFT = "user:left"
    USER_ONLINE = "user:online"
    USER_OFFLINE = "user:offline"
    NOTIFICATION_NEW = "notification:new"
    MEDIA_PROCESSED = "media:processed"
    SYNC_REQUIRED = "sync:required"


class ConnectAuth(WireStruct, frozen=True, kw_only=True):
    """The `auth` object of the Socket.IO CONNECT packet: an access token from auth (or send
    it as `Authorization: Bearer` on the handshake request instead)."""

    token: str


class ConnectRefused(msgspec.Struct, frozen=True, kw_only=True):
    """The `connect_error` data of a refused connect: why, in words (no token, an invalid or
    revoked one, too many sockets, or the gateway cannot reach Redis for a moment)."""

    message: str


class MessageSendPayload(WireStruct, frozen=True, kw_only=True):
    """`message:send`: the ack answers `{ok: true, message}` once the message is stored."""

    conversation_id: UUID
    content: MessageContent
    client_message_id: ClientMessageId
    attachments: Attachments = msgspec.field(default_factory=list)


class TypingPayload(WireStruct, frozen=True, kw_only=True):
    """`typing:start` and `typing:stop`."""

    conversation_id: UUID


class ConversationJoinPayload(WireStruct, frozen=True, kw_only=True):
    """`conversation:join`: subscribe this socket to a conversation's room."""

    conversation_id: UUID


class ConversationLeavePayload(WireStruct, frozen=True, kw_only=True):
    """`conversation:leave`: unsubscribe this socket from a conversation's room."""

    conversation_id: UUID


Positions = Annotated[dict[UUID, Annotated[int, Meta(ge=0, le=2**63 - 1)]], Meta(max_length=100)]


class SyncPayload(WireStruct, frozen=True, kw_only=True):
    """`sync`: the last `seq` the client holds per conversation, and optionally the last
    `changeSeq`; it gets every message after the one and every change after the other.

    At most 100 conversations a call in each map (each is a read of chat's); a client holding
    more syncs them in several calls, which the rate limit charges by size."""

    since: Positions
    changes_since: Positions = msgspec.field(default_factory=dict)


class PresenceGetPayload(WireStruct, frozen=True, kw_only=True):
    """`presence:get`: which of these users are online."""

    user_ids: Annotated[list[UUID], Meta(max_length=200)]


class RoomUserPayload(WireStruct, frozen=True, kw_only=True):
    """`user:typing`, `user:stopped-typing`, `user:joined`, `user:left`."""

    conversation_id: UUID
    user_id: UUID


class UserOnlinePayload(WireStruct, frozen=True, kw_only=True):
    """`user:online`."""

    user_id: UUID


class UserOfflinePayload(WireStruct, frozen=True, kw_only=True):
    """`user:offline`."""

    user_id: UUID
    last_seen_at: UtcDatetime


class ConversationReadPayload(WireStruct, frozen=True, kw_only=True):
    """`conversation:read`: `userId` has read up to and including `seq`."""

    conversation_id: UUID
    user_id: UUID
    seq: Seq
    change_seq: ChangeSeq = 0


class MessageDeletedPayload(WireStruct, frozen=True, kw_only=True):
    """`message:deleted`."""

    conversation_id: UUID
    message_id: UUID
    seq: Seq
    deleted_at: UtcDatetime
    change_seq: ChangeSeq = 0


class ConversationTitle(WireStruct, frozen=True, kw_only=True):
    id: UUID
    title: str | None


class ConversationUpdatedPayload(WireStruct, frozen=True, kw_only=True):
    """`conversation:updated`: what changed of the conversation (its title)."""

    conversation: ConversationTitle
    updated_by: UUID
    updated_at: UtcDatetime
    change_seq: ChangeSeq = 0


class MemberAddedPayload(WireStruct, frozen=True, kw_only=True):
    """`conversation:member-added`."""

    conversation_id: UUID
    user_id: UUID
    role: MemberRole
    by: UUID
    change_seq: ChangeSeq = 0


class MemberRemovedPayload(WireStruct, frozen=True, kw_only=True):
    """`conversation:member-removed` (`by` is `userId` when they left)."""

    conversation_id: UUID
    user_id: UUID
    by: UUID
    change_seq: ChangeSeq = 0


class MemberUpdatedPayload(WireStruct, frozen=True, kw_only=True):
    """`conversation:member-updated`: `userId` has a new role."""

    conversation_id: UUID
    user_id: UUID
    role: MemberRole
    by: UUID
    change_seq: ChangeSeq = 0


class SyncRequiredPayload(WireStruct, frozen=True, kw_only=True):
    """`sync:required`: this socket may have missed events (the instance lost its broker
    connection, and with it its queue, for a while). Sync as after a reconnect."""

    reason: Literal["events_missed"] = "events_missed"


AckErrorCode = Literal[
    "invalid",
    "not_found",
    "conflict",
    "forbidden",
    "rate_limited",
    "unauthorized",
    "timeout",
    "internal",
]


class AckError(WireStruct, frozen=True, kw_only=True):
    """Why a client event was refused."""

    code: AckErrorCode
    message: str


class AckFailure(WireStruct, frozen=True, kw_only=True):
    """Ack of a refused client event."""

    ok: Literal[False] = False
    error: AckError


class Done(WireStruct, frozen=True, kw_only=True):
    """Ack of `typing:start`, `typing:stop`, `conversation:join` and `conversation:leave`."""

    ok: Literal[True] = True


class MessageSent(WireStruct, frozen=True, kw_only=True):
    """Ack of `message:send`: the message as stored (the same for a resend of a
    `clientMessageId` already stored)."""

    ok: Literal[True] = True
    message: MessageView


class PresenceState(WireStruct, frozen=True, kw_only=True):
    online: bool
    last_seen_at: UtcDatetime | None = None


class PresenceFound(WireStruct, frozen=True, kw_only=True):
    """Ack of `presence:get`: the state of each user the caller may see; the others (no
    conversation in common, blocked, or no such user) are in `notFound`."""

    ok: Literal[True] = True
    presence: dict[UUID, PresenceState]
    not_found: list[UUID]


ChangeEventName = Literal[
    "message:updated",
    "message:deleted",
    "conversation:read",
    "conversation:updated",
    "conversation:member-added",
    "conversation:member-removed",
    "conversation:member-updated",
]


class SyncChange(WireStruct, frozen=True, kw_only=True):
    """One change, as its live event would have carried it: `data` is that event's payload.

    Except for a deleted message's text: once a message is deleted, each earlier
    `message:updated` of it shows the message as deleted (`content` null, no `attachments`,
    the `deletedAt` of its delete, its own `editedAt` and `changeSeq`), as history shows it."""

    change_seq: ChangeSeq
    event: ChangeEventName
    data: dict[str, Any]
    at: UtcDatetime


class SyncConversation(WireStruct, frozen=True, kw_only=True):
    """What one conversation missed: the messages part when it was in `since`, the changes
    part when it was in `changesSince`."""

    messages: list[MessageView] | msgspec.UnsetType = msgspec.UNSET
    has_more: bool | msgspec.UnsetType = msgspec.UNSET
    changes: list[SyncChange] | msgspec.UnsetType = msgspec.UNSET
    last_change_seq: ChangeSeq | msgspec.UnsetType = msgspec.UNSET
    has_more_changes: bool | msgspec.UnsetType = msgspec.UNSET


class Synced(WireStruct, frozen=True, kw_only=True):
    """Ack of `sync`: a page of what each conversation missed; the conversations the caller
    is not a member of are in `notFound`."""

    ok: Literal[True] = True
    conversations: dict[UUID, SyncConversation]
    not_found: list[UUID]


CLIENT_PAYLOADS: Final[Mapping[ClientEvent, type[WireStruct]]] = MappingProxyType(
    {
        ClientEvent.MESSAGE_SEND: MessageSendPayload,
        ClientEvent.TYPING_START: TypingPayload,
        ClientEvent.TYPING_STOP: TypingPayload,
        ClientEvent.CONVERSATION_JOIN: ConversationJoinPayload,
        ClientEvent.CONVERSATION_LEAVE: ConversationLeavePayload,
        ClientEvent.SYNC: SyncPayload,
        ClientEvent.PRESENCE_GET: PresenceGetPayload,
    }
)

SERVER_PAYLOADS: Final[Mapping[ServerEvent, type[WireStruct]]] = MappingProxyType(
    {
        ServerEvent.MESSAGE_RECEIVED: MessageView,
        ServerEvent.MESSAGE_UPDATED: MessageView,
        ServerEvent.MESSAGE_DELETED: MessageDeletedPayload,
        ServerEvent.CONVERSATION_CREATED: ConversationCreated,
        ServerEvent.CONVERSATION_READ: ConversationReadPayload,
        ServerEvent.CONVERSATION_UPDATED: ConversationUpdatedPayload,
        ServerEvent.CONVERSATION_MEMBER_ADDED: MemberAddedPayload,
        ServerEvent.CONVERSATION_MEMBER_REMOVED: MemberRemovedPayload,
        ServerEvent.CONVERSATION_MEMBER_UPDATED: MemberUpdatedPayload,
        ServerEvent.USER_TYPING: RoomUserPayload,
        ServerEvent.USER_STOPPED_TYPING: RoomUserPayload,
        ServerEvent.USER_JOINED: RoomUserPayload,
        ServerEvent.USER_LEFT: RoomUserPayload,
        ServerEvent.USER_ONLINE: UserOnlinePayload,
        ServerEvent.USER_OFFLINE: UserOfflinePayload,
        ServerEvent.NOTIFICATION_NEW: NotificationCreated,
        ServerEvent.MEDIA_PROCESSED: MediaProcessed,
        ServerEvent.SYNC_REQUIRED: SyncRequiredPayload,
    }
)


CLIENT_ACKS: Final[Mapping[ClientEvent, type[WireStruct]]] = MappingProxyType(
    {
        ClientEvent.MESSAGE_SEND: MessageSent,
        ClientEvent.TYPING_START: Done,
        ClientEvent.TYPING_STOP: Done,
        ClientEvent.CONVERSATION_JOIN: Done,
        ClientEvent.CONVERSATION_LEAVE: Done,
        ClientEvent.SYNC: Synced,
        ClientEvent.PRESENCE_GET: PresenceFound,
    }
)
"""The success ack of each client event; a refusal is always `AckFailure`."""


def decode_socket_payload[P: WireStruct](payload_type: type[P], data: object) -> P:
    """Validate a parsed client payload strictly; raise `ContractError` naming the field."""
    try:
        return msgspec.convert(data, payload_type, strict=True)
    except msgspec.ValidationError as exc:
        raise ContractError.from_msgspec(payload_type.__name__, exc) from exc


def ack_ok(ack: WireStruct) -> dict[str, Any]:
    """A success ack (one of `CLIENT_ACKS`) as JSON-ready builtins."""
    body: dict[str, Any] = msgspec.to_builtins(ack)
    return body


def ack_error(code: AckErrorCode, message: str) -> dict[str, Any]:
    """`{ok: false, error: {code, message}}`."""
    body: dict[str, Any] = msgspec.to_builtins(
        AckFailure(error=AckError(code=code, message=message))
    )
    return body
