"""Chat's REST answers that other services read, published once.

Chat encodes its responses with these types and the gateway decodes chat's answers with the
same ones, so the two cannot drift apart. A reader ignores fields it does not know: chat may
add a field without breaking a reader deployed before it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from contracts.events import MessageView
from contracts.sockets import ChangeEventName

ConversationType = Literal["direct", "group"]
Role = Literal["owner", "admin", "member"]
NotificationLevel = Literal["all", "mentions", "none"]


class ApiResponse(msgspec.Struct, kw_only=True, rename="camel"):
    """Base of a response body: camelCase on the wire, unknown fields ignored when read."""


class Participant(ApiResponse, kw_only=True):
    user_id: UUID
    role: Role
    joined_at: datetime
    last_read_seq: int
    username: str | None
    display_name: str | None


class ConversationView(ApiResponse, kw_only=True):
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


class ConversationResponse(ApiResponse, kw_only=True):
    conversation: ConversationView


class ConversationIds(ApiResponse, kw_only=True):
    """Every conversation the caller is in, ids only: what a realtime gateway needs to place a
    socket in its rooms, without the views' participants and last messages."""

    conversation_ids: list[UUID]
    engaged_ids: list[UUID]
    """Those of them the caller has taken part in (created, written in or accepted)."""
    blocked_ids: list[UUID]
    """The users the caller blocked: no presence passes between them."""


class MessagePage(ApiResponse, kw_only=True):
    messages: list[MessageView]
    has_more: bool


class Change(ApiResponse, kw_only=True):
    """One change: its position, the socket event a live client got for it, and its payload
    (an edit of a message deleted since shows the message as deleted: no text is kept)."""

    change_seq: int
    event: ChangeEventName
    data: msgspec.Raw
    at: datetime


class ChangePage(ApiResponse, kw_only=True):
    """The changes after ``after``, oldest first; ``lastChangeSeq`` is the position of the
    last one returned (or ``after`` when none): pass it as ``after`` to continue."""

    changes: list[Change]
    last_change_seq: int
    has_more: bool
