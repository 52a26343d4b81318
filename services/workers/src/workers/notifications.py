"""The notifications consumer: what one ``notification.requested`` means for each recipient.

Chat names who to notify, from each participant's notification level, and asks only for
messages that notify someone (a group message that names nobody never reaches the workers):
those who want every message (a direct conversation's other member by default, group members
who chose ``all``) are notified when they are not looking at that conversation: offline, or
online with no socket that has it open (``conversation:join``); those named as ``@username``
(unless at ``none``) are notified even while looking. Each notification is stored first, then
announced as ``notification.created`` (the gateway pushes ``notification:new``), paced by
``workers.announcements`` so a burst is not one push per message per member.

An edit or a delete of a message revises the preview of every notification that shows it (the
new text, or ``[message deleted]``), so a deleted text does not live on in notifications; the
revision is not announced again (clients re-read the list). A deleted account's notifications
are deleted with it (``user.deleted``). Retries and dead-lettering are the
runner's; idempotency is the store's (each notification
keeps the ids of the events it absorbed), so no per-event record is written anywhere.
A repeat handled by the same process announces nothing (the pacer drops a count it has
published); after a restart it may announce a notification again, with the same id and count:
clients key notifications by id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from contracts import make_envelope
from contracts.envelope import Envelope
from contracts.events import (
    MessageDeleted,
    MessageUpdated,
    NotificationCreated,
    NotificationRequested,
    UserDeleted,
)
from servicekit.logs import get_logger
from servicekit.presence_keys import Attention, PresenceReader
from workers.announcements import AnnouncementPacer
from workers.config import SERVICE
from workers.notification_store import Kind, NewMessage, NotificationStore

_log = get_logger("workers.notifications")

PREVIEW_CHARS = 140
ATTACHMENT_PREVIEW = "[attachment]"
DELETED_PREVIEW = "[message deleted]"


def preview_of(content: str | None, attachments: int) -> str:
    text = " ".join((content or "").split())
    if not text:
        return ATTACHMENT_PREVIEW if attachments else ""
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def who_to_notify(
    requested: NotificationRequested, attention: dict[UUID, Attention]
) -> list[tuple[UUID, Kind]]:
    """Recipients to notify and how: the mentioned always, then those who want every message
    and are not looking at the conversation."""
    chosen: list[tuple[UUID, Kind]] = [
        (i, "mention") for i in dict.fromkeys(requested.mentioned_ids)
    ]
    mentioned = set(requested.mentioned_ids)
    for recipient in dict.fromkeys(requested.notify_ids):
        if recipient not in mentioned and attention.get(recipient) != Attention.VIEWING:
            chosen.append((recipient, "message"))
    return chosen


class MessageNotifications:
    def __init__(
        self,
        store: NotificationStore,
        presence: PresenceReader,
        announcements: AnnouncementPacer,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._presence = presence
        self._announcements = announcements
        self._clock = clock

    async def __call__(self, envelope: Envelope[Any], _: None) -> None:
        match envelope.data:
            case NotificationRequested() as requested:
                await self._notify(envelope, requested)
            case MessageUpdated(message=edited):
                preview = preview_of(edited.content, len(edited.attachments))
                await self._store.revise_preview(edited.id, preview)
            case MessageDeleted(message_id=deleted):
                await self._store.revise_preview(deleted, DELETED_PREVIEW)
            case UserDeleted(user_id=deleted_user):
                await self._store.forget_recipient(deleted_user)
            case _:
                _log.info("notifications_event_ignored", event_type=envelope.type)

    async def _notify(self, envelope: Envelope[Any], requested: NotificationRequested) -> None:
        message = requested.message
        attention = (
            await self._presence.attention(requested.notify_ids, message.conversation_id)
            if requested.notify_ids
            else {}
        )
        preview = preview_of(message.content, len(message.attachments))
        now = self._clock()
        notifications = await self._store.record_all(
            envelope.id,
            [
                NewMessage(
                    recipient_id=recipient,
                    kind=kind,
                    conversation_id=message.conversation_id,
                    message_id=message.id,
                    seq=message.seq,
                    preview=preview,
                    event_id=envelope.id,
                    at=now,
                )
                for recipient, kind in who_to_notify(requested, attention)
            ],
        )
        announced = [
            make_envelope(
                NotificationCreated(
                    notification_id=notification.id,
                    recipient_id=notification.recipient_id,
                    kind=notification.kind,
                    conversation_id=notification.conversation_id,
                    message_id=notification.message_id,
                    preview=notification.preview,
                    count=notification.count,
                    created_at=notification.updated_at,
                ),
                producer=SERVICE,
                trace_id=envelope.trace_id,
            )
            for notification in notifications
        ]
        await self._announcements.announce(announced)
