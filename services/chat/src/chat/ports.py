"""What chat's use cases need from the world, as protocols: Postgres (``ChatRepository``,
``PeopleRepository``, ``ChangeLog``, ``MediaRepository``), MongoDB (``MessageBodies``), Redis
(``UserLimits``), auth (``UserDirectory``) and the media use cases satisfy them in production;
the unit tests pass in-memory fakes.

Every method with a ``conn`` runs on the unit of work's connection (``Work.conn``), so the use
case decides what shares a transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from chat.domain import (
    ConversationRow,
    LockedConversation,
    Membership,
    ParticipantRow,
    ReadMarker,
    StoredMessage,
)
from chat.media.domain import MediaRow, ProcessedOutcome
from contracts.changes import ChangeEvent, NumberedChange
from contracts.chat_api import Change, NotificationLevel


class Conversations(Protocol):
    """Conversations, their participants and their messages.
    ``append_messages`` raises ``ClientMessageIdTaken`` when a concurrent send stored one of
    the same ``(sender, clientMessageId)``."""

    async def insert_conversation(
        self, conn: Any, conversation: ConversationRow, direct_key: str | None
    ) -> bool: ...

    async def direct_conversation_id(self, conn: Any, key: str) -> UUID | None: ...

    async def add_participants(
        self, conn: Any, conversation_id: UUID, members: list[tuple[UUID, str]], at: datetime
    ) -> list[UUID]: ...

    async def remove_participant(
        self, conn: Any, conversation_id: UUID, user_id: UUID
    ) -> str | None:
        """The role the removed participant held (None: not a participant)."""
        ...

    async def role_of(self, conn: Any, conversation_id: UUID, user_id: UUID) -> str | None: ...

    async def set_role(
        self, conn: Any, conversation_id: UUID, user_id: UUID, role: str
    ) -> None: ...

    async def membership(
        self, conn: Any, conversation_id: UUID, user_id: UUID
    ) -> Membership | None: ...

    async def conversations_of(
        self, conn: Any, user_id: UUID, after: tuple[datetime, UUID] | None, limit: int
    ) -> list[Membership]: ...

    async def participants(self, conn: Any, conversation_ids: list[UUID]) -> list[ParticipantRow]:
        """Oldest first (by ``joined_at``, then user id)."""
        ...

    async def conversation_ids_of(self, conn: Any, user_id: UUID) -> tuple[list[UUID], list[UUID]]:
        """Every conversation of the user's, and those the user has taken part in."""
        ...

    async def engage(self, conn: Any, conversation_id: UUID, user_ids: list[UUID]) -> list[UUID]:
        """Those of ``user_ids`` for whom taking part is new."""
        ...

    async def member_ids(self, conn: Any, conversation_id: UUID) -> list[UUID]: ...

    async def update_title(
        self, conn: Any, conversation_id: UUID, title: str | None, at: datetime
    ) -> None: ...

    async def lock_conversations(
        self, conn: Any, conversation_ids: list[UUID], sender_ids: list[UUID]
    ) -> dict[UUID, LockedConversation]: ...

    async def members_named(
        self, conn: Any, conversation_id: UUID, usernames: list[str]
    ) -> list[UUID]:
        """Participants of these (lower-cased) usernames whose level is not ``none``."""
        ...

    async def set_notification_level(
        self, conn: Any, conversation_id: UUID, user_id: UUID, level: NotificationLevel | None
    ) -> str | None:
        """The conversation's type, or None for a non-participant."""
        ...

    async def messages_by_client_ids(
        self, conn: Any, keys: list[tuple[UUID, str]]
    ) -> dict[tuple[UUID, str], StoredMessage]: ...

    async def append_messages(self, conn: Any, messages: list[StoredMessage]) -> None: ...

    async def lock_message(
        self, conn: Any, conversation_id: UUID, message_id: UUID
    ) -> StoredMessage | None: ...

    async def edit_message(
        self,
        conn: Any,
        message_id: UUID,
        *,
        content: str | None,
        body_in_mongo: bool,
        at: datetime,
        change_seq: int,
    ) -> StoredMessage: ...

    async def tombstone_message(
        self, conn: Any, message_id: UUID, at: datetime, change_seq: int
    ) -> None: ...

    async def page_after(
        self, conn: Any, conversation_id: UUID, after: int, limit: int
    ) -> list[StoredMessage]: ...

    async def page_before(
        self, conn: Any, conversation_id: UUID, before: int | None, limit: int
    ) -> list[StoredMessage]: ...

    async def messages_at(
        self, conn: Any, conversation_ids: list[UUID], seqs: list[int]
    ) -> list[StoredMessage]: ...

    async def read_marker(
        self, conn: Any, conversation_id: UUID, user_id: UUID
    ) -> ReadMarker | None: ...

    async def move_read_marker(
        self, conn: Any, conversation_id: UUID, user_id: UUID, seq: int
    ) -> None: ...


class UserReplica(Protocol):
    """Chat's copy of auth's users (a deleted account stays as a tombstone)."""

    async def upsert_user(
        self, conn: Any, user_id: UUID, username: str, display_name: str, at: datetime
    ) -> None: ...

    async def never_heard_of(self, conn: Any, user_ids: list[UUID]) -> list[UUID]: ...

    async def known_users(self, conn: Any, user_ids: list[UUID]) -> set[UUID]:
        """Those of ``user_ids`` with a live account."""
        ...


class People(Protocol):
    """Blocks, deleted accounts and avatars."""

    async def block(self, conn: Any, blocker_id: UUID, blocked_id: UUID, at: datetime) -> bool:
        """False when the block already existed."""
        ...

    async def unblock(self, conn: Any, blocker_id: UUID, blocked_id: UUID) -> bool: ...

    async def blocked_by(self, conn: Any, blocker_id: UUID) -> list[tuple[UUID, datetime]]: ...

    async def barred(
        self, conn: Any, user_id: UUID, others: list[UUID]
    ) -> tuple[set[UUID], set[UUID]]:
        """Of ``others``: those ``user_id`` blocked, and those who blocked ``user_id``."""
        ...

    async def live_user(self, conn: Any, user_id: UUID) -> bool: ...

    async def mark_deleted(self, conn: Any, user_id: UUID, at: datetime) -> None: ...

    async def set_avatar(
        self, conn: Any, user_id: UUID, media_id: UUID | None, at: datetime
    ) -> bool:
        """False when the user is not in the directory yet."""
        ...

    async def groups_of(self, conn: Any, user_id: UUID) -> list[UUID]: ...


class Changes(Protocol):
    """The per-conversation change log (``chat.change_log``)."""

    async def next_seq(self, conn: Any, conversation_id: UUID) -> int: ...

    async def record[E: NumberedChange](
        self, conn: Any, conversation_id: UUID, at: datetime, change: E
    ) -> E:
        """``change`` with the next ``changeSeq``, kept."""
        ...

    async def keep(
        self, conn: Any, conversation_id: UUID, event: ChangeEvent, at: datetime
    ) -> None: ...

    async def forget_edits(
        self, conn: Any, conversation_id: UUID, message_id: UUID, deleted_at: datetime
    ) -> None: ...

    async def after(
        self, conn: Any, conversation_id: UUID, after: int, limit: int
    ) -> list[Change]: ...

    async def heads(self, conn: Any, conversation_ids: list[UUID]) -> dict[UUID, int]: ...


class Bodies(Protocol):
    """Message text above the inline threshold, kept outside Postgres by message id."""

    async def put(self, message_id: UUID, content: str) -> None: ...

    async def get_many(self, message_ids: list[UUID]) -> dict[UUID, str]: ...

    async def delete(self, message_id: UUID) -> None: ...


class Attachments(Protocol):
    async def check_attachments(self, conn: Any, sender_id: UUID, media_ids: list[UUID]) -> None:
        """Raises ``InvalidInput`` naming each that is not the sender's own, ready media."""
        ...


class CreationLimit(Protocol):
    async def charge(self, user_id: UUID) -> None:
        """Counts one new conversation of ``user_id``; raises ``TooMany`` when over."""
        ...


class Directory(Protocol):
    async def learn_missing(self, token: str, user_ids: list[UUID]) -> None:
        """Brings users auth knows but the replica has not heard of yet into it; raises
        ``PeerUnavailableError`` when auth cannot be asked."""
        ...


class MediaStore(Protocol):
    async def insert_media(self, conn: Any, media: MediaRow) -> None: ...

    async def stored_bytes_of(self, conn: Any, owner_id: UUID) -> int:
        """What the owner's media take, the owner's uploads serialized to the transaction's
        end."""
        ...

    async def visible_media(self, conn: Any, media_id: UUID, user_id: UUID) -> MediaRow | None: ...

    async def owned_media(
        self, conn: Any, owner_id: UUID, media_ids: list[UUID]
    ) -> dict[UUID, MediaRow]: ...

    async def finish_processing(self, conn: Any, outcome: ProcessedOutcome) -> bool: ...
