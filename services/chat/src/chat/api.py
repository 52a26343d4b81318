"""The public JSON of the chat API, camelCase on the wire. Messages are the contract's
``MessageView``, the same object sockets and events carry; the answers other services read
(conversations, their ids, message and change pages) are published in ``contracts.chat_api``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from contracts.chat_api import (
    ConversationType,
    ConversationView,
    NotificationLevel,
    Role,
)
from contracts.events import MessageView
from contracts.wire import MAX_MESSAGE_CHARS, Attachments, ClientMessageId, ConversationTitle
from servicekit.display_text import message_pattern, name_pattern
from servicekit.page_cursors import TimeCursor
from servicekit.request_body import Body, Query

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


class ChangesQuery(Query):
    after: Annotated[int, Meta(ge=0, le=MAX_SEQ)] = 0
    limit: Annotated[int, Meta(ge=1, le=500)] = 100


class BlockedUser(Body):
    user_id: UUID
    blocked_at: datetime


class BlockList(Body):
    """The users the caller blocked, most recent first."""

    blocks: list[BlockedUser]


class ConversationPage(Body):
    conversations: list[ConversationView]
    next_cursor: str | None


class MessageResponse(Body):
    message: MessageView


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
