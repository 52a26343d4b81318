"""Notifications: who chat asks the workers to notify of a message, and what the workers
announce once a notification is stored."""

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from contracts import names
from contracts.events.messages import MessageView
from contracts.wire import Event, UtcDatetime

NotificationKind = Literal["message", "mention"]


class NotificationRequested(Event, frozen=True, kw_only=True):
    """Chat asks the workers to notify participants of a stored message.

    Decided in the send transaction from each participant's notification level (`all`,
    `mentions` or `none`; a direct conversation defaults to `all`, a group to `mentions`):
    `notifyIds` want every message and are notified unless they are looking at the
    conversation; `mentionedIds` were named as `@username` and are notified even while looking.
    The sender is in neither, and at least one is not empty: a message that notifies nobody
    (a group message naming nobody) publishes no request at all, so the notification work of a
    message grows with its mentions, not with the size of the group.
    """

    event_type = names.NOTIFICATION_REQUESTED

    message: MessageView
    notify_ids: list[UUID] = msgspec.field(default_factory=list)
    mentioned_ids: list[UUID] = msgspec.field(default_factory=list)


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
