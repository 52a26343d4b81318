"""The notifications consumer: what one ``message.created`` means for each recipient.

A recipient other than the sender gets a notification when they are not looking at that
conversation: offline, or online with no socket that has it open (``conversation:join``).
Muted conversations notify nobody, except those mentioned: an ``@username`` mention notifies
even someone who is looking at the conversation. Each notification is stored first, then
announced as ``notification.created`` (the gateway pushes ``notification:new``), paced by
``workers.announcements`` so a burst is not one push per message per member.

Retries, dead-lettering and idempotency by event id are the runner's; the store makes a
repeated event harmless where the runner cannot (a crash between the effect and its mark).
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
from contracts.events import MessageCreated, NotificationCreated
from servicekit.logs import get_logger
from servicekit.presence_keys import Attention, PresenceReader
from workers.announcements import AnnouncementPacer
from workers.config import SERVICE
from workers.notification_store import Kind, NewMessage, NotificationStore

_log = get_logger("workers.notifications")

PREVIEW_CHARS = 140
ATTACHMENT_PREVIEW = "[attachment]"


def preview_of(content: str | None, attachments: int) -> str:
    text = " ".join((content or "").split())
    if not text:
        return ATTACHMENT_PREVIEW if attachments else ""
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def who_to_notify(
    created: MessageCreated, attention: dict[UUID, Attention]
) -> list[tuple[UUID, Kind]]:
    """Recipients to notify and how, in recipient order."""
    mentioned = set(created.mentioned_ids)
    muted = set(created.muted_ids)
    chosen: list[tuple[UUID, Kind]] = []
    for recipient in created.recipient_ids:
        if recipient == created.message.sender_id:
            continue
        if recipient in mentioned:
            chosen.append((recipient, "mention"))
        elif recipient not in muted and attention.get(recipient) != Attention.VIEWING:
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
        created = envelope.data
        if not isinstance(created, MessageCreated):
            _log.info("notifications_event_ignored", event_type=envelope.type)
            return
        message = created.message
        others = [r for r in created.recipient_ids if r != message.sender_id]
        attention = await self._presence.attention(others, message.conversation_id)
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
                for recipient, kind in who_to_notify(created, attention)
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
