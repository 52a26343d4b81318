"""All of chat's SQL, one method per query; methods take the connection so the service decides
what shares a transaction (a message, its seq, its read marker and its outbox event)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from chat.domain import (
    ClientMessageIdTaken,
    ConversationRow,
    LockedConversation,
    Membership,
    ParticipantRow,
    ReadMarker,
    StoredMessage,
)
from contracts.chat_api import NotificationLevel
from servicekit.postgres import Connection

_MESSAGE_COLUMNS = (
    "id, conversation_id, seq, sender_id, client_message_id, content, body_in_mongo, "
    "attachments, created_at, edited_at, deleted_at, change_seq"
)


def _message(row: asyncpg.Record) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        sender_id=row["sender_id"],
        client_message_id=row["client_message_id"],
        content=row["content"],
        body_in_mongo=row["body_in_mongo"],
        attachments=list(row["attachments"]),
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        deleted_at=row["deleted_at"],
        change_seq=row["change_seq"],
    )


def _conversation(row: asyncpg.Record) -> ConversationRow:
    return ConversationRow(
        id=row["id"],
        type=row["type"],
        title=row["title"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        last_activity_at=row["last_activity_at"],
        last_seq=row["last_seq"],
    )


def _membership(row: asyncpg.Record) -> Membership:
    return Membership(_conversation(row), row["role"], row["last_read_seq"], row["notify"])


class ChatRepository:
    # --- users replica ---

    async def upsert_user(
        self, conn: Connection, user_id: UUID, username: str, display_name: str, at: datetime
    ) -> None:
        await conn.execute(
            """
            INSERT INTO users (id, username, display_name, updated_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (id) DO UPDATE
            SET username = excluded.username, display_name = excluded.display_name,
                updated_at = excluded.updated_at
            WHERE users.updated_at <= excluded.updated_at AND users.deleted_at IS NULL
            """,
            user_id,
            username,
            display_name,
            at,
        )

    async def never_heard_of(self, conn: Connection, user_ids: list[UUID]) -> list[UUID]:
        """Those of ``user_ids`` with no row at all (a deleted account's tombstone is a row)."""
        rows = await conn.fetch(
            """
            SELECT wanted FROM unnest($1::uuid[]) AS wanted
            WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = wanted)
            """,
            list(dict.fromkeys(user_ids)),
        )
        return [row["wanted"] for row in rows]

    async def known_users(self, conn: Connection, user_ids: list[UUID]) -> set[UUID]:
        rows = await conn.fetch(
            "SELECT id FROM users WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL", user_ids
        )
        return {row["id"] for row in rows}

    # --- conversations ---

    async def insert_conversation(
        self,
        conn: Connection,
        conversation: ConversationRow,
        direct_key: str | None,
    ) -> bool:
        """False when a direct conversation of the same pair already exists."""
        inserted = await conn.fetchval(
            """
            INSERT INTO conversations (id, type, title, created_by, created_at, last_activity_at,
                                       direct_key)
            VALUES ($1, $2, $3, $4, $5, $5, $6)
            ON CONFLICT (direct_key) DO NOTHING
            RETURNING true
            """,
            conversation.id,
            conversation.type,
            conversation.title,
            conversation.created_by,
            conversation.created_at,
            direct_key,
        )
        return bool(inserted)

    async def direct_conversation_id(self, conn: Connection, key: str) -> UUID | None:
        found: UUID | None = await conn.fetchval(
            "SELECT id FROM conversations WHERE direct_key = $1", key
        )
        return found

    async def add_participants(
        self,
        conn: Connection,
        conversation_id: UUID,
        members: list[tuple[UUID, str]],
        at: datetime,
    ) -> list[UUID]:
        """Adds who is not a participant yet; returns those added."""
        rows = await conn.fetch(
            """
            INSERT INTO participants (conversation_id, user_id, role, joined_at)
            SELECT $1, t.user_id, t.role, $4 FROM unnest($2::uuid[], $3::text[]) AS t(user_id, role)
            ON CONFLICT DO NOTHING
            RETURNING user_id
            """,
            conversation_id,
            [user_id for user_id, _ in members],
            [role for _, role in members],
            at,
        )
        return [row["user_id"] for row in rows]

    async def remove_participant(
        self, conn: Connection, conversation_id: UUID, user_id: UUID
    ) -> str | None:
        """The role the removed participant held, or None when they were not one."""
        role: str | None = await conn.fetchval(
            "DELETE FROM participants WHERE conversation_id = $1 AND user_id = $2 RETURNING role",
            conversation_id,
            user_id,
        )
        return role

    async def role_of(self, conn: Connection, conversation_id: UUID, user_id: UUID) -> str | None:
        role: str | None = await conn.fetchval(
            "SELECT role FROM participants WHERE conversation_id = $1 AND user_id = $2",
            conversation_id,
            user_id,
        )
        return role

    async def set_role(
        self, conn: Connection, conversation_id: UUID, user_id: UUID, role: str
    ) -> None:
        await conn.execute(
            "UPDATE participants SET role = $3 WHERE conversation_id = $1 AND user_id = $2",
            conversation_id,
            user_id,
            role,
        )

    async def membership(
        self, conn: Connection, conversation_id: UUID, user_id: UUID
    ) -> Membership | None:
        row = await conn.fetchrow(
            """
            SELECT c.id, c.type, c.title, c.created_by, c.created_at, c.last_activity_at,
                   c.last_seq, p.role, p.last_read_seq, p.notify
            FROM participants p JOIN conversations c ON c.id = p.conversation_id
            WHERE p.conversation_id = $1 AND p.user_id = $2
            """,
            conversation_id,
            user_id,
        )
        if row is None:
            return None
        return _membership(row)

    async def conversations_of(
        self,
        conn: Connection,
        user_id: UUID,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Membership]:
        """The user's conversations, most recently active first."""
        rows = await conn.fetch(
            """
            SELECT c.id, c.type, c.title, c.created_by, c.created_at, c.last_activity_at,
                   c.last_seq, p.role, p.last_read_seq, p.notify
            FROM participants p JOIN conversations c ON c.id = p.conversation_id
            WHERE p.user_id = $1
              AND ($2::timestamptz IS NULL OR (c.last_activity_at, c.id) < ($2, $3::uuid))
            ORDER BY c.last_activity_at DESC, c.id DESC
            LIMIT $4
            """,
            user_id,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [_membership(r) for r in rows]

    async def participants(
        self, conn: Connection, conversation_ids: list[UUID]
    ) -> list[ParticipantRow]:
        rows = await conn.fetch(
            """
            SELECT p.conversation_id, p.user_id, p.role, p.joined_at, p.last_read_seq,
                   u.username, u.display_name, p.engaged
            FROM participants p LEFT JOIN users u ON u.id = p.user_id
            WHERE p.conversation_id = ANY($1::uuid[])
            ORDER BY p.joined_at, p.user_id
            """,
            conversation_ids,
        )
        return [
            ParticipantRow(
                conversation_id=r["conversation_id"],
                user_id=r["user_id"],
                role=r["role"],
                joined_at=r["joined_at"],
                last_read_seq=r["last_read_seq"],
                username=r["username"],
                display_name=r["display_name"],
                engaged=r["engaged"],
            )
            for r in rows
        ]

    async def conversation_ids_of(
        self, conn: Connection, user_id: UUID
    ) -> tuple[list[UUID], list[UUID]]:
        """Every conversation of the user's, and those of them the user has taken part in."""
        rows = await conn.fetch(
            "SELECT conversation_id, engaged FROM participants WHERE user_id = $1", user_id
        )
        return (
            [row["conversation_id"] for row in rows],
            [row["conversation_id"] for row in rows if row["engaged"]],
        )

    async def engage(
        self, conn: Connection, conversation_id: UUID, user_ids: list[UUID]
    ) -> list[UUID]:
        """Mark the participants as having taken part; those for whom it is new."""
        rows = await conn.fetch(
            """
            UPDATE participants SET engaged = true
            WHERE conversation_id = $1 AND user_id = ANY($2::uuid[]) AND NOT engaged
            RETURNING user_id
            """,
            conversation_id,
            user_ids,
        )
        return [row["user_id"] for row in rows]

    async def member_ids(self, conn: Connection, conversation_id: UUID) -> list[UUID]:
        rows = await conn.fetch(
            "SELECT user_id FROM participants WHERE conversation_id = $1", conversation_id
        )
        return [row["user_id"] for row in rows]

    async def update_title(
        self, conn: Connection, conversation_id: UUID, title: str | None, at: datetime
    ) -> None:
        await conn.execute(
            "UPDATE conversations SET title = $2, last_activity_at = $3 WHERE id = $1",
            conversation_id,
            title,
            at,
        )

    # --- messages ---

    async def lock_conversations(
        self, conn: Connection, conversation_ids: list[UUID], sender_ids: list[UUID]
    ) -> dict[UUID, LockedConversation]:
        """Lock the conversations' rows in id order (so two batches never deadlock): writers of
        one conversation take turns from here on. Absent ids are simply missing."""
        rows = await conn.fetch(
            """
            SELECT c.id, c.last_seq,
                   ARRAY(SELECT user_id FROM participants
                         WHERE conversation_id = c.id AND user_id = ANY($2::uuid[])) AS senders,
                   ARRAY(SELECT user_id FROM participants
                         WHERE conversation_id = c.id AND user_id = ANY($2::uuid[])
                           AND engaged) AS engaged,
                   CASE WHEN c.type = 'direct'
                        THEN ARRAY(SELECT user_id FROM participants
                                   WHERE conversation_id = c.id
                                     AND coalesce(notify, 'all') = 'all')
                        ELSE ARRAY(SELECT user_id FROM participants
                                   WHERE conversation_id = c.id AND notify = 'all')
                   END AS notify_all,
                   CASE WHEN c.type = 'direct'
                        THEN ARRAY(SELECT p.user_id FROM participants p
                                   JOIN participants o ON o.conversation_id = p.conversation_id
                                                      AND o.user_id <> p.user_id
                                   JOIN users ou ON ou.id = o.user_id
                                   WHERE p.conversation_id = c.id
                                     AND p.user_id = ANY($2::uuid[])
                                     AND (ou.deleted_at IS NOT NULL OR EXISTS (
                                          SELECT 1 FROM blocks b
                                          WHERE (b.blocker_id = p.user_id
                                                 AND b.blocked_id = o.user_id)
                                             OR (b.blocker_id = o.user_id
                                                 AND b.blocked_id = p.user_id))))
                        ELSE '{}'::uuid[]
                   END AS barred
            FROM conversations c WHERE c.id = ANY($1::uuid[])
            ORDER BY c.id
            FOR UPDATE OF c
            """,
            conversation_ids,
            sender_ids,
        )
        return {
            row["id"]: LockedConversation(
                row["last_seq"],
                frozenset(row["senders"]),
                list(row["notify_all"]),
                set(row["engaged"]),
                frozenset(row["barred"]),
            )
            for row in rows
        }

    async def members_named(
        self, conn: Connection, conversation_id: UUID, usernames: list[str]
    ) -> list[UUID]:
        """Participants whose username (case-insensitively) is one of ``usernames``, except
        those whose notification level is ``none``."""
        rows = await conn.fetch(
            """
            SELECT p.user_id FROM participants p JOIN users u ON u.id = p.user_id
            WHERE p.conversation_id = $1 AND lower(u.username) = ANY($2::text[])
              AND p.notify IS DISTINCT FROM 'none'
            """,
            conversation_id,
            usernames,
        )
        return [row["user_id"] for row in rows]

    async def set_notification_level(
        self,
        conn: Connection,
        conversation_id: UUID,
        user_id: UUID,
        level: NotificationLevel | None,
    ) -> str | None:
        """``None`` returns to the conversation's default. The conversation's type, or None
        when the user is not a participant."""
        kind: str | None = await conn.fetchval(
            """
            UPDATE participants p SET notify = $3 FROM conversations c
            WHERE p.conversation_id = $1 AND p.user_id = $2 AND c.id = p.conversation_id
            RETURNING c.type
            """,
            conversation_id,
            user_id,
            level,
        )
        return kind

    async def messages_by_client_ids(
        self, conn: Connection, keys: list[tuple[UUID, str]]
    ) -> dict[tuple[UUID, str], StoredMessage]:
        """Stored messages by ``(sender, clientMessageId)``."""
        if not keys:
            return {}
        rows = await conn.fetch(
            f"""
            SELECT {", ".join(f"m.{c.strip()}" for c in _MESSAGE_COLUMNS.split(","))}
            FROM messages m JOIN unnest($1::uuid[], $2::text[]) AS k(sender_id, client_id)
              ON m.sender_id = k.sender_id AND m.client_message_id = k.client_id
            """,  # noqa: S608
            [sender for sender, _ in keys],
            [client_id for _, client_id in keys],
        )
        found = [_message(row) for row in rows]
        return {(m.sender_id, m.client_message_id or ""): m for m in found}

    async def append_messages(self, conn: Connection, messages: list[StoredMessage]) -> None:
        """Insert each at its ``seq``, move each conversation on to its newest, and mark it read
        by each sender up to their newest: one statement for the whole batch. Raises
        ``ClientMessageIdTaken`` when another transaction stored one of their
        ``(sender, clientMessageId)`` meanwhile."""
        try:
            await self._append_messages(conn, messages)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name != "messages_client_id":
                raise
            raise ClientMessageIdTaken(error.detail or "clientMessageId already used") from None

    async def _append_messages(self, conn: Connection, messages: list[StoredMessage]) -> None:
        await conn.execute(
            """
            WITH new AS (
                SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[],
                                     $5::text[], $6::text[], $7::bool[], $8::text[],
                                     $9::timestamptz[])
                    AS m(id, conversation_id, seq, sender_id, client_message_id, content,
                         body_in_mongo, attachments, created_at)
            ), inserted AS (
                INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id,
                                      content, body_in_mongo, attachments, created_at)
                SELECT id, conversation_id, seq, sender_id, client_message_id, content,
                       body_in_mongo, attachments::uuid[], created_at
                FROM new
            ), moved AS (
                UPDATE conversations c SET last_seq = n.seq, last_activity_at = n.at
                FROM (SELECT conversation_id, max(seq) AS seq, max(created_at) AS at
                      FROM new GROUP BY conversation_id) n
                WHERE c.id = n.conversation_id
            )
            UPDATE participants p
            SET last_read_seq = greatest(p.last_read_seq, r.seq), engaged = true
            FROM (SELECT conversation_id, sender_id, max(seq) AS seq
                  FROM new GROUP BY conversation_id, sender_id) r
            WHERE p.conversation_id = r.conversation_id AND p.user_id = r.sender_id
            """,
            [m.id for m in messages],
            [m.conversation_id for m in messages],
            [m.seq for m in messages],
            [m.sender_id for m in messages],
            [m.client_message_id for m in messages],
            [m.content for m in messages],
            [m.body_in_mongo for m in messages],
            ["{" + ",".join(str(a) for a in m.attachments) + "}" for m in messages],
            [m.created_at for m in messages],
        )

    async def lock_message(
        self, conn: Connection, conversation_id: UUID, message_id: UUID
    ) -> StoredMessage | None:
        row = await conn.fetchrow(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages "  # noqa: S608
            "WHERE conversation_id = $1 AND id = $2 FOR UPDATE",
            conversation_id,
            message_id,
        )
        return None if row is None else _message(row)

    async def edit_message(
        self,
        conn: Connection,
        message_id: UUID,
        *,
        content: str | None,
        body_in_mongo: bool,
        at: datetime,
        change_seq: int,
    ) -> StoredMessage:
        row = await conn.fetchrow(
            f"""
            UPDATE messages SET content = $2, body_in_mongo = $3, edited_at = $4, change_seq = $5
            WHERE id = $1
            RETURNING {_MESSAGE_COLUMNS}
            """,  # noqa: S608
            message_id,
            content,
            body_in_mongo,
            at,
            change_seq,
        )
        assert row is not None  # locked by the caller
        return _message(row)

    async def tombstone_message(
        self, conn: Connection, message_id: UUID, at: datetime, change_seq: int
    ) -> None:
        await conn.execute(
            """
            UPDATE messages SET content = NULL, body_in_mongo = false, attachments = '{}',
                                deleted_at = $2, change_seq = $3
            WHERE id = $1
            """,
            message_id,
            at,
            change_seq,
        )

    async def page_after(
        self, conn: Connection, conversation_id: UUID, after: int, limit: int
    ) -> list[StoredMessage]:
        rows = await conn.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages "  # noqa: S608
            "WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            conversation_id,
            after,
            limit,
        )
        return [_message(row) for row in rows]

    async def page_before(
        self, conn: Connection, conversation_id: UUID, before: int | None, limit: int
    ) -> list[StoredMessage]:
        """Newest first, below ``before`` (or from the newest)."""
        rows = await conn.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages "  # noqa: S608
            "WHERE conversation_id = $1 AND ($2::bigint IS NULL OR seq < $2) "
            "ORDER BY seq DESC LIMIT $3",
            conversation_id,
            before,
            limit,
        )
        return [_message(row) for row in rows]

    async def messages_at(
        self, conn: Connection, conversation_ids: list[UUID], seqs: list[int]
    ) -> list[StoredMessage]:
        rows = await conn.fetch(
            f"""
            SELECT {", ".join(f"m.{c.strip()}" for c in _MESSAGE_COLUMNS.split(","))}
            FROM messages m JOIN unnest($1::uuid[], $2::bigint[]) AS t(cid, seq)
              ON m.conversation_id = t.cid AND m.seq = t.seq
            """,  # noqa: S608
            conversation_ids,
            seqs,
        )
        return [_message(row) for row in rows]

    async def read_marker(
        self, conn: Connection, conversation_id: UUID, user_id: UUID
    ) -> ReadMarker | None:
        """The participant's marker, locked to the end of the transaction (concurrent reads of
        one reader take turns), or None for a non-participant."""
        row = await conn.fetchrow(
            """
            SELECT p.last_read_seq, c.last_seq, p.engaged
            FROM participants p JOIN conversations c ON c.id = p.conversation_id
            WHERE p.conversation_id = $1 AND p.user_id = $2
            FOR UPDATE OF p
            """,
            conversation_id,
            user_id,
        )
        if row is None:
            return None
        return ReadMarker(row["last_read_seq"], row["last_seq"], row["engaged"])

    async def move_read_marker(
        self, conn: Connection, conversation_id: UUID, user_id: UUID, seq: int
    ) -> None:
        await conn.execute(
            "UPDATE participants SET last_read_seq = $3 "
            "WHERE conversation_id = $1 AND user_id = $2",
            conversation_id,
            user_id,
            seq,
        )
