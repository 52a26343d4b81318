"""In-memory stand-ins for chat's ports (``chat.ports``) and its unit of work, so the use cases'
rules run without Postgres, MongoDB, Redis or auth.

``ChatTables`` holds what the repositories would: every fake repository reads and writes the
same tables, as the real ones share one database. ``RecordingUnitOfWork`` hands out a ``Work``
whose ``conn`` the fakes ignore and records the events of each transaction that committed (a
block that raises rolls back: its events are dropped). Writes to the tables are not undone on
a rollback; the use cases refuse before they write, which is what the tests check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec

from chat.api import CreateConversationRequest
from chat.block_service import BlockService
from chat.domain import (
    ClientMessageIdTaken,
    ConversationRow,
    LockedConversation,
    Membership,
    ParticipantRow,
    ReadMarker,
    StoredMessage,
)
from chat.media.domain import MediaRow, ProcessedOutcome
from chat.service import ChatService, SendCommand, Sent
from contracts.changes import ChangeEvent, NumberedChange, change_seq_of, client_change
from contracts.chat_api import Change, NotificationLevel
from contracts.sockets import ChangeEventName
from servicekit.blob_store import BlobNotFoundError
from servicekit.peer_api import PeerUnavailableError
from servicekit.refusals import FieldError, InvalidInput, TooMany
from servicekit.unit_of_work import RecordingUnitOfWork

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class TickingClock:
    """A second later at every call, so who joined first is never a tie."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class UserEntry:
    username: str
    display_name: str
    deleted: bool = False
    avatar: uuid.UUID | None = None


@dataclass
class ParticipantEntry:
    role: str
    joined_at: datetime
    last_read_seq: int = 0
    notify: NotificationLevel | None = None
    engaged: bool = False


@dataclass
class ChatTables:
    users: dict[uuid.UUID, UserEntry] = field(default_factory=dict)
    conversations: dict[uuid.UUID, ConversationRow] = field(default_factory=dict)
    direct_keys: dict[str, uuid.UUID] = field(default_factory=dict)
    participants: dict[uuid.UUID, dict[uuid.UUID, ParticipantEntry]] = field(default_factory=dict)
    messages: dict[uuid.UUID, StoredMessage] = field(default_factory=dict)
    blocks: dict[tuple[uuid.UUID, uuid.UUID], datetime] = field(default_factory=dict)
    # (sender, clientMessageId) another transaction stores between the check and the insert
    taken_meanwhile: set[tuple[uuid.UUID, str]] = field(default_factory=set)

    def add_user(self, username: str) -> uuid.UUID:
        user_id = uuid.uuid4()
        self.users[user_id] = UserEntry(username, username.title())
        return user_id

    def members(self, conversation_id: uuid.UUID) -> dict[uuid.UUID, ParticipantEntry]:
        return self.participants.setdefault(conversation_id, {})

    def role(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
        entry = self.members(conversation_id).get(user_id)
        return None if entry is None else entry.role

    def blocked_between(self, first: uuid.UUID, second: uuid.UUID) -> bool:
        return (first, second) in self.blocks or (second, first) in self.blocks


class FakeConversations:
    """``chat.ports.Conversations`` and ``UserReplica`` over ``ChatTables``."""

    def __init__(self, tables: ChatTables) -> None:
        self.t = tables

    # --- users replica ---

    async def upsert_user(
        self, conn: Any, user_id: uuid.UUID, username: str, display_name: str, at: datetime
    ) -> None:
        entry = self.t.users.get(user_id)
        if entry is None or not entry.deleted:
            self.t.users[user_id] = UserEntry(username, display_name)

    async def never_heard_of(self, conn: Any, user_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        return [i for i in dict.fromkeys(user_ids) if i not in self.t.users]

    async def known_users(self, conn: Any, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        return {i for i in user_ids if i in self.t.users and not self.t.users[i].deleted}

    # --- conversations ---

    async def insert_conversation(
        self, conn: Any, conversation: ConversationRow, direct_key: str | None
    ) -> bool:
        if direct_key is not None:
            if direct_key in self.t.direct_keys:
                return False
            self.t.direct_keys[direct_key] = conversation.id
        self.t.conversations[conversation.id] = conversation
        return True

    async def direct_conversation_id(self, conn: Any, key: str) -> uuid.UUID | None:
        return self.t.direct_keys.get(key)

    async def add_participants(
        self,
        conn: Any,
        conversation_id: uuid.UUID,
        members: list[tuple[uuid.UUID, str]],
        at: datetime,
    ) -> list[uuid.UUID]:
        present = self.t.members(conversation_id)
        added = []
        for user_id, role in members:
            if user_id not in present:
                present[user_id] = ParticipantEntry(role, at)
                added.append(user_id)
        return added

    async def remove_participant(
        self, conn: Any, conversation_id: uuid.UUID, user_id: uuid.UUID
    ) -> str | None:
        removed = self.t.members(conversation_id).pop(user_id, None)
        return None if removed is None else removed.role

    async def role_of(
        self, conn: Any, conversation_id: uuid.UUID, user_id: uuid.UUID
    ) -> str | None:
        return self.t.role(conversation_id, user_id)

    async def set_role(
        self, conn: Any, conversation_id: uuid.UUID, user_id: uuid.UUID, role: str
    ) -> None:
        self.t.members(conversation_id)[user_id].role = role

    async def membership(
        self, conn: Any, conversation_id: uuid.UUID, user_id: uuid.UUID
    ) -> Membership | None:
        entry = self.t.members(conversation_id).get(user_id)
        if entry is None:
            return None
        conversation = self.t.conversations[conversation_id]
        return Membership(conversation, entry.role, entry.last_read_seq, entry.notify)

    async def conversations_of(
        self, conn: Any, user_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Membership]:
        found = [
            membership
            for conversation_id in self.t.conversations
            if (membership := await self.membership(conn, conversation_id, user_id)) is not None
        ]
        found.sort(key=lambda m: (m.conversation.last_activity_at, m.conversation.id), reverse=True)
        if after is not None:
            found = [
                m for m in found if (m.conversation.last_activity_at, m.conversation.id) < after
            ]
        return found[:limit]

    async def participants(
        self, conn: Any, conversation_ids: list[uuid.UUID]
    ) -> list[ParticipantRow]:
        rows = [
            ParticipantRow(
                conversation_id=conversation_id,
                user_id=user_id,
                role=entry.role,
                joined_at=entry.joined_at,
                last_read_seq=entry.last_read_seq,
                username=self.t.users[user_id].username if user_id in self.t.users else None,
                display_name=(
                    self.t.users[user_id].display_name if user_id in self.t.users else None
                ),
                engaged=entry.engaged,
            )
            for conversation_id in conversation_ids
            for user_id, entry in self.t.members(conversation_id).items()
        ]
        return sorted(rows, key=lambda row: (row.joined_at, row.user_id))

    async def conversation_ids_of(
        self, conn: Any, user_id: uuid.UUID
    ) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        ids = [c for c, members in self.t.participants.items() if user_id in members]
        return ids, [c for c in ids if self.t.members(c)[user_id].engaged]

    async def engage(
        self, conn: Any, conversation_id: uuid.UUID, user_ids: list[uuid.UUID]
    ) -> list[uuid.UUID]:
        newly = []
        for user_id, entry in self.t.members(conversation_id).items():
            if user_id in user_ids and not entry.engaged:
                entry.engaged = True
                newly.append(user_id)
        return newly

    async def member_ids(self, conn: Any, conversation_id: uuid.UUID) -> list[uuid.UUID]:
        return list(self.t.members(conversation_id))

    async def update_title(
        self, conn: Any, conversation_id: uuid.UUID, title: str | None, at: datetime
    ) -> None:
        self._replace(conversation_id, title=title, last_activity_at=at)

    # --- messages ---

    async def lock_conversations(
        self, conn: Any, conversation_ids: list[uuid.UUID], sender_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, LockedConversation]:
        locked = {}
        for conversation_id in conversation_ids:
            conversation = self.t.conversations.get(conversation_id)
            if conversation is None:
                continue
            members = self.t.members(conversation_id)
            senders = frozenset(s for s in sender_ids if s in members)
            direct = conversation.type == "direct"
            notify_all = [
                user_id
                for user_id, entry in members.items()
                if (entry.notify or ("all" if direct else None)) == "all"
            ]
            barred = frozenset(
                sender
                for sender in senders
                for other in members
                if direct
                and other != sender
                and (self.t.users[other].deleted or self.t.blocked_between(sender, other))
            )
            locked[conversation_id] = LockedConversation(
                conversation.last_seq,
                senders,
                notify_all,
                {s for s in senders if members[s].engaged},
                barred,
            )
        return locked

    async def members_named(
        self, conn: Any, conversation_id: uuid.UUID, usernames: list[str]
    ) -> list[uuid.UUID]:
        return [
            user_id
            for user_id, entry in self.t.members(conversation_id).items()
            if self.t.users[user_id].username.lower() in usernames and entry.notify != "none"
        ]

    async def set_notification_level(
        self,
        conn: Any,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        level: NotificationLevel | None,
    ) -> str | None:
        entry = self.t.members(conversation_id).get(user_id)
        if entry is None:
            return None
        entry.notify = level
        return self.t.conversations[conversation_id].type

    async def messages_by_client_ids(
        self, conn: Any, keys: list[tuple[uuid.UUID, str]]
    ) -> dict[tuple[uuid.UUID, str], StoredMessage]:
        return {
            (m.sender_id, m.client_message_id): m
            for m in self.t.messages.values()
            if m.client_message_id is not None and (m.sender_id, m.client_message_id) in keys
        }

    async def append_messages(self, conn: Any, messages: list[StoredMessage]) -> None:
        for message in messages:
            key = (message.sender_id, message.client_message_id or "")
            if message.client_message_id is not None and key in self.t.taken_meanwhile:
                raise ClientMessageIdTaken(str(key))
        for message in messages:
            self.t.messages[message.id] = message
            self._replace(
                message.conversation_id,
                last_seq=message.seq,
                last_activity_at=message.created_at,
            )
            sender = self.t.members(message.conversation_id)[message.sender_id]
            sender.last_read_seq = max(sender.last_read_seq, message.seq)
            sender.engaged = True

    async def lock_message(
        self, conn: Any, conversation_id: uuid.UUID, message_id: uuid.UUID
    ) -> StoredMessage | None:
        message = self.t.messages.get(message_id)
        return message if message and message.conversation_id == conversation_id else None

    async def edit_message(
        self,
        conn: Any,
        message_id: uuid.UUID,
        *,
        content: str | None,
        body_in_mongo: bool,
        at: datetime,
        change_seq: int,
    ) -> StoredMessage:
        edited = dataclasses.replace(
            self.t.messages[message_id],
            content=content,
            body_in_mongo=body_in_mongo,
            edited_at=at,
            change_seq=change_seq,
        )
        self.t.messages[message_id] = edited
        return edited

    async def tombstone_message(
        self, conn: Any, message_id: uuid.UUID, at: datetime, change_seq: int
    ) -> None:
        self.t.messages[message_id] = dataclasses.replace(
            self.t.messages[message_id],
            content=None,
            body_in_mongo=False,
            attachments=[],
            deleted_at=at,
            change_seq=change_seq,
        )

    async def page_after(
        self, conn: Any, conversation_id: uuid.UUID, after: int, limit: int
    ) -> list[StoredMessage]:
        return [m for m in self._history(conversation_id) if m.seq > after][:limit]

    async def page_before(
        self, conn: Any, conversation_id: uuid.UUID, before: int | None, limit: int
    ) -> list[StoredMessage]:
        older = [m for m in self._history(conversation_id) if before is None or m.seq < before]
        return list(reversed(older))[:limit]

    async def messages_at(
        self, conn: Any, conversation_ids: list[uuid.UUID], seqs: list[int]
    ) -> list[StoredMessage]:
        wanted = set(zip(conversation_ids, seqs, strict=True))
        return [m for m in self.t.messages.values() if (m.conversation_id, m.seq) in wanted]

    async def read_marker(
        self, conn: Any, conversation_id: uuid.UUID, user_id: uuid.UUID
    ) -> ReadMarker | None:
        entry = self.t.members(conversation_id).get(user_id)
        if entry is None:
            return None
        last_seq = self.t.conversations[conversation_id].last_seq
        return ReadMarker(entry.last_read_seq, last_seq, entry.engaged)

    async def move_read_marker(
        self, conn: Any, conversation_id: uuid.UUID, user_id: uuid.UUID, seq: int
    ) -> None:
        self.t.members(conversation_id)[user_id].last_read_seq = seq

    def _history(self, conversation_id: uuid.UUID) -> list[StoredMessage]:
        found = [m for m in self.t.messages.values() if m.conversation_id == conversation_id]
        return sorted(found, key=lambda m: m.seq)

    def _replace(self, conversation_id: uuid.UUID, **changes: Any) -> None:
        self.t.conversations[conversation_id] = dataclasses.replace(
            self.t.conversations[conversation_id], **changes
        )


class FakePeople:
    """``chat.ports.People`` over ``ChatTables``."""

    def __init__(self, tables: ChatTables) -> None:
        self.t = tables

    async def block(
        self, conn: Any, blocker_id: uuid.UUID, blocked_id: uuid.UUID, at: datetime
    ) -> bool:
        if (blocker_id, blocked_id) in self.t.blocks:
            return False
        self.t.blocks[blocker_id, blocked_id] = at
        return True

    async def unblock(self, conn: Any, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> bool:
        return self.t.blocks.pop((blocker_id, blocked_id), None) is not None

    async def blocked_by(
        self, conn: Any, blocker_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, datetime]]:
        found = [(b, at) for (a, b), at in self.t.blocks.items() if a == blocker_id]
        return sorted(found, key=lambda pair: pair[1], reverse=True)

    async def barred(
        self, conn: Any, user_id: uuid.UUID, others: list[uuid.UUID]
    ) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
        return (
            {o for o in others if (user_id, o) in self.t.blocks},
            {o for o in others if (o, user_id) in self.t.blocks},
        )

    async def live_user(self, conn: Any, user_id: uuid.UUID) -> bool:
        entry = self.t.users.get(user_id)
        return entry is not None and not entry.deleted

    async def mark_deleted(self, conn: Any, user_id: uuid.UUID, at: datetime) -> None:
        self.t.users[user_id] = UserEntry("", "Deleted account", deleted=True)
        for pair in [pair for pair in self.t.blocks if user_id in pair]:
            del self.t.blocks[pair]

    async def set_avatar(
        self, conn: Any, user_id: uuid.UUID, media_id: uuid.UUID | None, at: datetime
    ) -> bool:
        if user_id not in self.t.users:
            return False
        self.t.users[user_id].avatar = media_id
        return True

    async def groups_of(self, conn: Any, user_id: uuid.UUID) -> list[uuid.UUID]:
        return sorted(
            c
            for c, members in self.t.participants.items()
            if user_id in members and self.t.conversations[c].type == "group"
        )


class FakeChangeLog:
    """``chat.ports.Changes``: each conversation's changes, numbered from 1."""

    def __init__(self) -> None:
        self.kept: dict[uuid.UUID, list[tuple[ChangeEvent, datetime]]] = {}
        self.forgotten_edits: list[uuid.UUID] = []
        self._heads: dict[uuid.UUID, int] = {}

    async def next_seq(self, conn: Any, conversation_id: uuid.UUID) -> int:
        self._heads[conversation_id] = self._heads.get(conversation_id, 0) + 1
        return self._heads[conversation_id]

    async def record[E: NumberedChange](
        self, conn: Any, conversation_id: uuid.UUID, at: datetime, change: E
    ) -> E:
        seq = await self.next_seq(conn, conversation_id)
        event = msgspec.structs.replace(change, change_seq=seq)
        await self.keep(conn, conversation_id, event, at)
        return event

    async def keep(
        self, conn: Any, conversation_id: uuid.UUID, event: ChangeEvent, at: datetime
    ) -> None:
        self.kept.setdefault(conversation_id, []).append((event, at))

    async def forget_edits(
        self, conn: Any, conversation_id: uuid.UUID, message_id: uuid.UUID, deleted_at: datetime
    ) -> None:
        self.forgotten_edits.append(message_id)

    async def after(
        self, conn: Any, conversation_id: uuid.UUID, after: int, limit: int
    ) -> list[Change]:
        changes = []
        for event, at in self.kept.get(conversation_id, []):
            if change_seq_of(event) > after:
                name, payload = client_change(event)
                changes.append(
                    Change(
                        change_seq=change_seq_of(event),
                        event=cast(ChangeEventName, str(name)),
                        data=msgspec.Raw(msgspec.json.encode(payload)),
                        at=at,
                    )
                )
        return changes[:limit]

    async def heads(self, conn: Any, conversation_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        return {c: self._heads[c] for c in conversation_ids if c in self._heads}


class FakeBodies:
    def __init__(self) -> None:
        self.bodies: dict[uuid.UUID, str] = {}

    async def put(self, message_id: uuid.UUID, content: str) -> None:
        self.bodies[message_id] = content

    async def get_many(self, message_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        return {i: self.bodies[i] for i in message_ids if i in self.bodies}

    async def delete(self, message_id: uuid.UUID) -> None:
        self.bodies.pop(message_id, None)


class FakeAttachments:
    """Every sender's media is ready unless listed in ``pending``."""

    def __init__(self) -> None:
        self.pending: set[uuid.UUID] = set()

    async def check_attachments(
        self, conn: Any, sender_id: uuid.UUID, media_ids: list[uuid.UUID]
    ) -> None:
        errors = [
            FieldError(f"attachments[{index}]", "media is pending, not ready")
            for index, media_id in enumerate(media_ids)
            if media_id in self.pending
        ]
        if errors:
            raise InvalidInput(errors)


class FakeCreationLimit:
    def __init__(self) -> None:
        self.charged: list[uuid.UUID] = []
        self.exhausted = False

    async def charge(self, user_id: uuid.UUID) -> None:
        if self.exhausted:
            raise TooMany("Too many new conversations; retry in 30s", 30)
        self.charged.append(user_id)


class FakeDirectory:
    """Auth as the directory asks it: ``known`` users it answers for, or unreachable."""

    def __init__(self, tables: ChatTables) -> None:
        self.t = tables
        self.known: dict[uuid.UUID, str] = {}
        self.unreachable = False

    async def learn_missing(self, token: str, user_ids: list[uuid.UUID]) -> None:
        if self.unreachable:
            raise PeerUnavailableError("auth is down")
        for user_id in user_ids:
            if user_id not in self.t.users and user_id in self.known:
                self.t.users[user_id] = UserEntry(self.known[user_id], self.known[user_id])


@dataclass
class FakeMediaStore:
    """``chat.ports.MediaStore``: media rows by id."""

    rows: dict[uuid.UUID, MediaRow] = field(default_factory=dict)

    async def insert_media(self, conn: Any, media: MediaRow) -> None:
        self.rows[media.id] = media

    async def stored_bytes_of(self, conn: Any, owner_id: uuid.UUID) -> int:
        return sum(
            m.size_bytes
            for m in self.rows.values()
            if m.owner_id == owner_id and m.status != "rejected"
        )

    async def visible_media(
        self, conn: Any, media_id: uuid.UUID, user_id: uuid.UUID
    ) -> MediaRow | None:
        media = self.rows.get(media_id)
        return media if media is not None and media.owner_id == user_id else None

    async def owned_media(
        self, conn: Any, owner_id: uuid.UUID, media_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, MediaRow]:
        return {i: m for i, m in self.rows.items() if i in media_ids and m.owner_id == owner_id}

    async def finish_processing(self, conn: Any, outcome: ProcessedOutcome) -> bool:
        media = self.rows.get(outcome.media_id)
        if media is None or media.status != "pending":
            return False
        self.rows[media.id] = dataclasses.replace(media, status=outcome.status)
        return True


INLINE_BODY_BYTES = 64


@dataclass
class FakeChat:
    """Chat's use cases wired to the fakes, as ``chat.app`` wires them to the real stores."""

    tables: ChatTables = field(default_factory=ChatTables)
    uow: RecordingUnitOfWork = field(default_factory=RecordingUnitOfWork)
    changes: FakeChangeLog = field(default_factory=FakeChangeLog)
    bodies: FakeBodies = field(default_factory=FakeBodies)
    attachments: FakeAttachments = field(default_factory=FakeAttachments)
    creations: FakeCreationLimit = field(default_factory=FakeCreationLimit)
    clock: TickingClock = field(default_factory=TickingClock)

    def __post_init__(self) -> None:
        self.directory = FakeDirectory(self.tables)
        conversations = FakeConversations(self.tables)
        people = FakePeople(self.tables)
        self.service = ChatService(
            uow=self.uow,
            store=conversations,
            users=conversations,
            changes=self.changes,
            people=people,
            bodies=self.bodies,
            inline_body_bytes=INLINE_BODY_BYTES,
            attachments=self.attachments,
            creations=self.creations,
            directory=self.directory,
            clock=self.clock,
        )
        self.blocks = BlockService(uow=self.uow, store=people, clock=self.clock)

    def user(self, username: str) -> uuid.UUID:
        return self.tables.add_user(username)

    async def group(self, owner: uuid.UUID, *members: uuid.UUID) -> uuid.UUID:
        """A group of ``owner``'s with ``members``, joined in that order; its events taken."""
        request = CreateConversationRequest(participant_ids=[members[0]], type="group")
        view, _ = await self.service.create_conversation(owner, request, "token")
        for member in members[1:]:
            await self.service.add_participants(owner, view.id, [member], "token")
        self.uow.take_events()
        return view.id

    async def direct(self, first: uuid.UUID, second: uuid.UUID) -> uuid.UUID:
        request = CreateConversationRequest(participant_ids=[second])
        view, _ = await self.service.create_conversation(first, request, "token")
        self.uow.take_events()
        return view.id

    async def send(
        self, sender: uuid.UUID, conversation_id: uuid.UUID, content: str, client_id: str | None
    ) -> Sent:
        return await self.service.send(
            SendCommand(
                conversation_id=conversation_id,
                sender_id=sender,
                content=content,
                client_message_id=client_id,
                attachments=[],
            )
        )


class _BlobWriter:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    @property
    def size(self) -> int:
        return sum(map(len, self.chunks))

    async def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)


class FakeBlobStore:
    """``servicekit.blob_store.BlobStore`` in a dict: a write is visible once its block ends."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    @contextlib.asynccontextmanager
    async def open_writer(self, key: str) -> AsyncIterator[_BlobWriter]:
        writer = _BlobWriter()
        yield writer
        self.blobs[key] = b"".join(writer.chunks)

    async def put(self, key: str, data: bytes) -> None:
        self.blobs[key] = data

    async def get(self, key: str) -> bytes:
        try:
            return self.blobs[key]
        except KeyError:
            raise BlobNotFoundError(key) from None

    async def delete(self, key: str) -> None:
        self.blobs.pop(key, None)

    async def exists(self, key: str) -> bool:
        return key in self.blobs

    async def probe(self) -> None:
        return None
