"""Who a new message notifies, and the preview it carries: pure rules, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.events import MessageCreated, MessageView
from servicekit.presence_keys import Attention
from workers.notifications import ATTACHMENT_PREVIEW, PREVIEW_CHARS, preview_of, who_to_notify

SENDER, VIEWER, ELSEWHERE, OFFLINE, MUTED = (uuid.uuid4() for _ in range(5))


def event(*, mentioned: list[uuid.UUID], muted: list[uuid.UUID]) -> MessageCreated:
    view = MessageView(
        id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        seq=1,
        sender_id=SENDER,
        content="x",
        created_at=datetime.now(UTC),
    )
    return MessageCreated(
        message=view,
        recipient_ids=[SENDER, VIEWER, ELSEWHERE, OFFLINE, MUTED],
        mentioned_ids=mentioned,
        muted_ids=muted,
    )


ATTENTION = {
    SENDER: Attention.VIEWING,
    VIEWER: Attention.VIEWING,
    ELSEWHERE: Attention.ELSEWHERE,
    OFFLINE: Attention.OFFLINE,
    MUTED: Attention.OFFLINE,
}


def test_everyone_not_looking_is_notified_except_the_sender_and_who_muted() -> None:
    chosen = who_to_notify(event(mentioned=[], muted=[MUTED]), ATTENTION)
    assert chosen == [(ELSEWHERE, "message"), (OFFLINE, "message")]


def test_a_mention_beats_looking_and_muting_but_never_notifies_the_sender() -> None:
    chosen = who_to_notify(event(mentioned=[VIEWER, MUTED, SENDER], muted=[MUTED]), ATTENTION)
    assert chosen == [
        (VIEWER, "mention"),
        (ELSEWHERE, "message"),
        (OFFLINE, "message"),
        (MUTED, "mention"),
    ]


def test_a_recipient_without_presence_counts_as_offline() -> None:
    chosen = who_to_notify(event(mentioned=[], muted=[]), {})
    assert [recipient for recipient, _ in chosen] == [VIEWER, ELSEWHERE, OFFLINE, MUTED]


def test_previews_fold_whitespace_shorten_and_name_attachments() -> None:
    assert preview_of("  hello \n  there ", 0) == "hello there"
    long = preview_of("a" * 500, 0)
    assert len(long) == PREVIEW_CHARS
    assert long.endswith("…")
    assert preview_of("", 2) == ATTACHMENT_PREVIEW
    assert preview_of(None, 0) == ""
