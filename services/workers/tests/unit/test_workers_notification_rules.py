"""Who a new message notifies, and the preview it carries: pure rules, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.events import MessageView, NotificationRequested
from servicekit.presence_keys import Attention
from workers.notifications import ATTACHMENT_PREVIEW, PREVIEW_CHARS, preview_of, who_to_notify

SENDER, VIEWER, ELSEWHERE, OFFLINE, QUIET = (uuid.uuid4() for _ in range(5))


def event(*, notify: list[uuid.UUID], mentioned: list[uuid.UUID]) -> NotificationRequested:
    view = MessageView(
        id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        seq=1,
        sender_id=SENDER,
        content="x",
        created_at=datetime.now(UTC),
    )
    return NotificationRequested(message=view, notify_ids=notify, mentioned_ids=mentioned)


ATTENTION = {
    SENDER: Attention.VIEWING,
    VIEWER: Attention.VIEWING,
    ELSEWHERE: Attention.ELSEWHERE,
    OFFLINE: Attention.OFFLINE,
    QUIET: Attention.OFFLINE,
}


def test_who_wants_every_message_is_notified_unless_looking() -> None:
    chosen = who_to_notify(event(notify=[VIEWER, ELSEWHERE, OFFLINE], mentioned=[]), ATTENTION)
    assert chosen == [(ELSEWHERE, "message"), (OFFLINE, "message")]


def test_a_mention_beats_looking_and_is_not_repeated_as_a_message() -> None:
    chosen = who_to_notify(
        event(notify=[ELSEWHERE, OFFLINE], mentioned=[VIEWER, OFFLINE, QUIET]), ATTENTION
    )
    assert chosen == [
        (VIEWER, "mention"),
        (OFFLINE, "mention"),
        (QUIET, "mention"),
        (ELSEWHERE, "message"),
    ]


def test_a_recipient_without_presence_counts_as_offline() -> None:
    chosen = who_to_notify(event(notify=[VIEWER, ELSEWHERE, OFFLINE], mentioned=[]), {})
    assert [recipient for recipient, _ in chosen] == [VIEWER, ELSEWHERE, OFFLINE]


def test_a_message_that_nobody_wants_and_names_nobody_notifies_nobody() -> None:
    assert who_to_notify(event(notify=[], mentioned=[]), ATTENTION) == []


def test_previews_fold_whitespace_shorten_and_name_attachments() -> None:
    assert preview_of("  hello \n  there ", 0) == "hello there"
    long = preview_of("a" * 500, 0)
    assert len(long) == PREVIEW_CHARS
    assert long.endswith("…")
    assert preview_of("", 2) == ATTACHMENT_PREVIEW
    assert preview_of(None, 0) == ""
