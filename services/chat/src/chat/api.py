"""The public JSON of the chat API, camelCase on the wire. Messages are the contract's
``MessageView``, the same object sockets and events carry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from chat.domain import NotificationLevel
from contracts.events import MessageView
from contracts.wire import MAX_MESSAGE_CHARS, Attachments, ClientMessageId, ConversationTitle
from servicekit.display_text import message_pattern, name_pattern
from servicekit.page_cursors import TimeCursor
from servicekit.request_body import Body, Query

ConversationType = Literal["direct", "group"]
Role = Literal["owner", "admin", "member"]
MAX_PARTICIPANTS = 500
MAX_SEQ = 2**63 - 1  # Postgres bigint: a larger number is invalid input, not a server error

# The contract's bounds, with the rule the service applies to the characters (``display_text``)
# stated as the pattern: the service checks it, naming the problem.
Title = Annotated[ConversationTitle, Meta(extra_json_schema={"pattern": name_pattern()})]
Content = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        extra_json_schema={"pattern": message_pattern()},
    ),
]


class CreateConversationRequest(Body):
    participant_ids: Annotated[list[UUID], Meta(min_length=1, max_length=MAX_PARTICIPANTS)]
    title: Title | None = None
    type: ConversationType | None = None


class UpdateConversationRequest(Body):
    title: Title | None


class AddParticipantsRequest(Body):
    user_ids: Annotated[list[UUID], Meta(min_length=1, max_length=MAX_PARTICIPANTS)]


class UpdateParticipantRequest(Body):
    role: Role


class SendMessageRequest(Body):
    content: Content
    client_message_id: ClientMessageId | None = None
    attachments: Attachments = msgspec.field(default_factory=list)


class EditMessageRequest(Body):
    content: Content


class ReadRequest(Body):
    seq: Annotated[int, Meta(ge=0, le=MAX_SEQ)]


class ConversationListQuery(Query):
    limit: Annotated[int, Meta(ge=1, le=50)] = 20
    cursor: TimeCursor | None = None


class MessagesQuery(Query):
    limit: Annotated[int, Meta(ge=1, le=100)] = 50
    before: Annotated[int, Meta(ge=1, le=MAX_SEQ)] | None = None
    after: Annotated[int, Meta(ge=0, le=MAX_SEQ)] | None = None


class Participant(Body):
    user_id: UUID
    role: Role
    joined_at: datetime
    last_read_seq: int
    username: str | None
    display_name: str | None


class ConversationView(Body):
    id: UUID
    type: ConversationType
    title: str | None
    created_by: UUID
    created_at: datetime
    last_activity_at: datetime
    last_seq: int
    participants: list[Participant]
    last_message: MessageView | None
    unread_count: int
    # The caller's: which of this conversation's messages notify them.
    notification_level: NotificationLevel
    last_change_seq: int = 0
    """The newest change (``GET .../changes``): a client holding this view replays from it."""


class ConversationIds(Body):
    """Every conversation the caller is in, ids only: what a realtime gateway needs to place a
    socket in its rooms, without the views' participants and last messages."""

    conversation_ids: list[UUID]
    engaged_ids: list[UUID]
    """Those of them the caller has taken part in (created, written in or accepted)."""
    blocked_ids: list[UUID]
    """The users the caller blocked: no presence passes between them."""


class ChangesQuery(Query):
    after: Annotated[int, Meta(ge=0, le=MAX_SEQ)] = 0
    limit: Annotated[int, Meta(ge=1, le=500)] = 100


class Change(Body):
    """One change: its position, the socket event a live client got for it, and its payload."""

    change_seq: int
    event: str
    data: msgspec.Raw
    at: datetime


class ChangePage(Body):
    """The changes after ``after``, oldest first; ``lastChangeSeq`` is the position of the
    last one returned (or ``after`` when none): pass it as ``after`` to continue."""

    changes: list[Change]
    last_change_seq: int
    has_more: bool


class BlockedUser(Body):
    user_id: UUID
    blocked_at: datetime


class BlockList(Body):
    """The users the caller blocked, most recent first."""

    blocks: list[BlockedUser]


class ConversationResponse(Body):
    conversation: ConversationView


class ConversationPage(Body):
    conversations: list[ConversationView]
    next_cursor: str | None


class MessageResponse(Body):
    message: MessageView


class MessagePage(Body):
    messages: list[MessageView]
    has_more: bool


class ReadResponse(Body):
    last_read_seq: int
    unread_count: int


class MuteRequest(Body):
    muted: bool


class MuteResponse(Body):
    muted: bool


class NotificationLevelRequest(Body):
    """``default`` returns to the conversation's default (direct: ``all``, group:
    ``mentions``)."""

    level: Literal["all", "mentions", "none", "default"]


class NotificationLevelResponse(Body):
    level: NotificationLevel
    is_default: bool
