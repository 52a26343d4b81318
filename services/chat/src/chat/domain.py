"""Conversation and message rules, free of I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

MANAGER_ROLES = frozenset({"owner", "admin"})


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: UUID
    conversation_id: UUID
    seq: int
    sender_id: UUID
    client_message_id: str | None
    content: str | None
    body_in_mongo: bool
    attachments: list[UUID]
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None


def direct_key(first: UUID, second: UUID) -> str:
    """The same key for both orders of a pair: one direct conversation per two people."""
    low, high = sorted((str(first), str(second)))
    return f"{low}:{high}"


def can_manage(role: str) -> bool:
    return role in MANAGER_ROLES


def can_delete(message: StoredMessage, user_id: UUID, role: str) -> bool:
    return message.sender_id == user_id or can_manage(role)


def unread(last_seq: int, last_read_seq: int) -> int:
    return max(0, last_seq - last_read_seq)
