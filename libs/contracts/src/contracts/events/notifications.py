"""Events the workers publish after storing a user notification."""

from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta

from contracts import names
from contracts.wire import Event, UtcDatetime

NotificationKind = Literal["message", "mention"]


class NotificationCreated(Event, frozen=True, kw_only=True):
    """A notification for `recipientId`; `count` is its unread count in that conversation."""

    event_type = names.NOTIFICATION_CREATED

    notification_id: UUID
    recipient_id: UUID
    kind: NotificationKind
    conversation_id: UUID
    message_id: UUID
    preview: Annotated[str, Meta(max_length=280)]
    count: Annotated[int, Meta(ge=1)]
    created_at: UtcDatetime
