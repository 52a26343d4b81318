"""Messages as chat stores and announces them (``MessageView``), for tests that play chat's side
to the gateway."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.events import MessageView


def stored_message(
    sender_id: uuid.UUID,
    conversation_id: uuid.UUID,
    client_message_id: str | None,
    *,
    seq: int = 1,
    content: str = "hello",
    created_at: datetime | None = None,
) -> MessageView:
    """A message chat stored just now (or at ``created_at``), under an id of its own."""
    return MessageView(
        id=uuid.uuid4(),
        conversation_id=conversation_id,
        seq=seq,
        sender_id=sender_id,
        content=content,
        client_message_id=client_message_id,
        created_at=created_at or datetime.now(UTC),
    )
