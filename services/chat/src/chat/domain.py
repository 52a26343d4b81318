"""Conversations, participants and messages as values, and the rules they follow, free of I/O."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from contracts.chat_api import NotificationLevel

MANAGER_ROLES = frozenset({"owner", "admin"})
# An @ not preceded by a word character (so not an e-mail address), then a username.
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_][A-Za-z0-9_.-]{0,63})")


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
    change_seq: int = 0  # the change that made this version (an edit or the delete)


@dataclass(frozen=True, slots=True)
class ConversationRow:
    id: UUID
    type: str
    title: str | None
    created_by: UUID
    created_at: datetime
    last_activity_at: datetime
    last_seq: int


@dataclass(frozen=True, slots=True)
class Membership:
    conversation: ConversationRow
    role: str
    last_read_seq: int
    notify: NotificationLevel | None  # None: the conversation's default


@dataclass(frozen=True, slots=True)
class ParticipantRow:
    conversation_id: UUID
    user_id: UUID
    role: str
    joined_at: datetime
    last_read_seq: int
    username: str | None
    display_name: str | None
    engaged: bool


@dataclass(frozen=True, slots=True)
class LockedConversation:
    """A conversation locked for writing, with what its next messages need to know."""

    last_seq: int
    senders: frozenset[UUID]  # those of the asked senders who are participants
    notify_all: list[UUID]  # participants whose level asks for every message
    engaged: set[UUID]  # those of the senders who have taken part (grows as the batch sends)
    barred: frozenset[UUID]  # senders whose direct partner blocked them, was blocked, or left


@dataclass(frozen=True, slots=True)
class ReadMarker:
    """A participant's read marker (locked until the transaction ends), with what bounds it."""

    last_read_seq: int
    last_seq: int  # the conversation's newest message
    engaged: bool  # whether the reader has taken part


class ClientMessageIdTaken(Exception):
    """A ``(sender, clientMessageId)`` another transaction stored meanwhile."""


def notification_level(
    conversation_type: str, chosen: NotificationLevel | None
) -> NotificationLevel:
    """What notifies a participant: their choice, else every message of a direct conversation
    and only mentions in a group (as Slack, Mattermost and Zulip default)."""
    if chosen is not None:
        return chosen
    return "all" if conversation_type == "direct" else "mentions"


def direct_key(first: UUID, second: UUID) -> str:
    """The same key for both orders of a pair: one direct conversation per two people."""
    low, high = sorted((str(first), str(second)))
    return f"{low}:{high}"


def can_manage(role: str) -> bool:
    return role in MANAGER_ROLES


def outranks(actor_role: str, target_role: str) -> bool:
    """Whether a participant of ``actor_role`` may remove one of ``target_role``: an owner
    anyone but another owner, an admin only members."""
    order = {"owner": 2, "admin": 1, "member": 0}
    return order[actor_role] > order[target_role]


def can_delete(message: StoredMessage, user_id: UUID, role: str) -> bool:
    return message.sender_id == user_id or can_manage(role)


def mentioned_usernames(content: str) -> set[str]:
    """Lower-cased usernames written as ``@username``; a trailing dot ends a sentence."""
    return {match.rstrip(".-").lower() for match in _MENTION.findall(content)}


def unread(last_seq: int, last_read_seq: int) -> int:
    return max(0, last_seq - last_read_seq)


def advanced_read_seq(marker: ReadMarker, seq: int) -> int:
    """Where a read up to ``seq`` leaves the marker: forward only, never past the newest
    message."""
    return min(max(marker.last_read_seq, seq), marker.last_seq)


def next_owner(participants: Sequence[ParticipantRow]) -> UUID | None:
    """Who inherits a group nobody owns any more: its longest-standing admin, else its
    longest-standing member; None while someone owns it (or nobody is left)."""
    if not participants or any(p.role == "owner" for p in participants):
        return None
    heir = min(participants, key=lambda p: (p.role != "admin", p.joined_at, p.user_id))
    return heir.user_id
