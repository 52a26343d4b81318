"""The `message.send` command and the events chat publishes about stored messages."""

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from contracts import names
from contracts.wire import (
    Attachments,
    ChangeSeq,
    ClientMessageId,
    Event,
    MessageContent,
    Seq,
    UtcDatetime,
    WireStruct,
)


class MessageView(WireStruct, frozen=True, kw_only=True):
    """A stored message as clients see it; `content` is `null` once deleted."""

    id: UUID
    conversation_id: UUID
    seq: Seq
    sender_id: UUID
    content: MessageContent | None
    client_message_id: ClientMessageId | None = None
    attachments: Attachments = msgspec.field(default_factory=list)
    created_at: UtcDatetime
    edited_at: UtcDatetime | None = None
    deleted_at: UtcDatetime | None = None
    change_seq: ChangeSeq = 0
    """The conversation change that made this version (an edit or the delete); 0 if none."""


class MessageSend(Event, frozen=True, kw_only=True):
    """Command from the gateway to chat: store this message once per `clientMessageId`.

    `socketId` names the socket whose ack waits for the stored message, if any.
    """

    event_type = names.MESSAGE_SEND

    conversation_id: UUID
    sender_id: UUID
    content: MessageContent
    client_message_id: ClientMessageId
    attachments: Attachments = msgspec.field(default_factory=list)
    sent_at: UtcDatetime
    socket_id: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class MessageCreated(Event, frozen=True, kw_only=True):
    """A message was stored; every participant's devices receive it (the gateways emit it to
    the conversation's room).

    Version 2: version 1 also listed every participant (`recipientIds`) and the muted ones,
    for notifications; who to notify now travels apart, as `notification.requested`, and only
    for messages that notify someone.
    """

    event_type = names.MESSAGE_CREATED
    event_version = 2

    message: MessageView


RefusalCode = Literal["invalid", "not_found", "conflict", "forbidden"]


class MessageRefused(Event, frozen=True, kw_only=True):
    """Chat refused a `message.send` (not a participant, text it cannot store, a
    `clientMessageId` already used in another conversation, an attachment that is not the
    sender's ready media): nothing was stored. The gateway answers the waiting ack with `code`
    and `detail` at once instead of letting it time out."""

    event_type = names.MESSAGE_REFUSED

    conversation_id: UUID
    sender_id: UUID
    client_message_id: ClientMessageId
    code: RefusalCode
    detail: Annotated[str, Meta(max_length=500)]


class MessageAlreadyStored(Event, frozen=True, kw_only=True):
    """A `message.send` repeated a `clientMessageId` chat had stored already: nothing new was
    stored and nobody else hears of it. The gateway that waits for it answers the sender's ack
    with the stored message (its own record of stored sends may have gone, with Redis)."""

    event_type = names.MESSAGE_ALREADY_STORED

    message: MessageView


class MessageUpdated(Event, frozen=True, kw_only=True):
    """A message was edited."""

    event_type = names.MESSAGE_UPDATED

    message: MessageView
    recipient_ids: list[UUID]


class MessageDeleted(Event, frozen=True, kw_only=True):
    """A message was deleted; its `seq` stays taken so the sequence remains gap-free."""

    event_type = names.MESSAGE_DELETED

    conversation_id: UUID
    message_id: UUID
    seq: Seq
    deleted_by: UUID
    deleted_at: UtcDatetime
    recipient_ids: list[UUID]
    change_seq: ChangeSeq = 0


class MessageRead(Event, frozen=True, kw_only=True):
    """`userId` has read the conversation up to and including `seq`."""

    event_type = names.MESSAGE_READ

    conversation_id: UUID
    user_id: UUID
    seq: Seq
    read_at: UtcDatetime
    change_seq: ChangeSeq = 0
