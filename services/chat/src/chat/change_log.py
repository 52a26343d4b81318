"""Chat's log of conversation changes (``contracts.changes``), numbered per conversation.

A use case that changes a conversation takes the next ``changeSeq`` (locking the
conversation's head row until it commits), builds its event with it, and records the client's
view of it here in the same transaction as the outbox row, so the live event and the replay
carry the same payload and position.

A message's text leaves the log with the message: its delete turns each of its earlier edits
(``message:updated``, the whole message as edited) into the message as deleted, in the delete's
transaction (``forget_edits``). The entries keep their event and ``changeSeq``, so a client
replaying the log gets every position once, in order, and a message view it can apply.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from contracts.changes import ChangeEvent, NumberedChange, change_seq_of, client_change
from contracts.chat_api import (
    Change,
)
from servicekit.postgres import Connection


class ChangeLog:
    async def next_seq(self, conn: Connection, conversation_id: UUID) -> int:
        seq: int = await conn.fetchval(
            """
            INSERT INTO change_heads (conversation_id, last_change_seq) VALUES ($1, 1)
            ON CONFLICT (conversation_id)
            DO UPDATE SET last_change_seq = change_heads.last_change_seq + 1
            RETURNING last_change_seq
            """,
            conversation_id,
        )
        return seq

    async def record[E: NumberedChange](
        self, conn: Connection, conversation_id: UUID, at: datetime, change: E
    ) -> E:
        """``change`` with the next ``changeSeq``, kept; the caller publishes it."""
        event = msgspec.structs.replace(
            change, change_seq=await self.next_seq(conn, conversation_id)
        )
        await self.keep(conn, conversation_id, event, at)
        return event

    async def keep(
        self, conn: Connection, conversation_id: UUID, event: ChangeEvent, at: datetime
    ) -> None:
        """A change already numbered by ``next_seq`` (one whose row also stores its number)."""
        name, payload = client_change(event)
        await conn.execute(
            """
            INSERT INTO conversation_changes (conversation_id, change_seq, event, data, at)
            VALUES ($1, $2, $3, $4::jsonb, $5)
            """,
            conversation_id,
            change_seq_of(event),
            str(name),
            msgspec.json.encode(payload).decode(),
            at,
        )

    async def forget_edits(
        self, conn: Connection, conversation_id: UUID, message_id: UUID, deleted_at: datetime
    ) -> None:
        """The deleted message's edits show it deleted: the tombstone a history read answers
        (``content`` null, no attachments, ``deletedAt``) with each edit's own ``editedAt`` and
        ``changeSeq``. The caller holds the conversation's change head (its delete's number)."""
        tombstone = msgspec.json.encode(
            {"content": None, "attachments": [], "deletedAt": deleted_at}
        ).decode()
        await conn.execute(
            """
            UPDATE conversation_changes SET data = data || $3::jsonb
            WHERE conversation_id = $1 AND event = 'message:updated' AND data->>'id' = $2
            """,
            conversation_id,
            str(message_id),
            tombstone,
        )

    async def after(
        self, conn: Connection, conversation_id: UUID, after: int, limit: int
    ) -> list[Change]:
        rows = await conn.fetch(
            """
            SELECT change_seq, event, data::text AS data, at FROM conversation_changes
            WHERE conversation_id = $1 AND change_seq > $2
            ORDER BY change_seq LIMIT $3
            """,
            conversation_id,
            after,
            limit,
        )
        return [
            Change(
                change_seq=row["change_seq"],
                event=row["event"],
                data=msgspec.Raw(row["data"].encode()),
                at=row["at"],
            )
            for row in rows
        ]

    async def heads(self, conn: Connection, conversation_ids: list[UUID]) -> dict[UUID, int]:
        rows = await conn.fetch(
            "SELECT conversation_id, last_change_seq FROM change_heads "
            "WHERE conversation_id = ANY($1::uuid[])",
            conversation_ids,
        )
        return {row["conversation_id"]: row["last_change_seq"] for row in rows}
