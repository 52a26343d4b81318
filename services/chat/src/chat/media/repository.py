"""All of chat's SQL about media, one method per query; methods take the connection so the
service decides what shares a transaction (the media row and its ``media.uploaded`` event)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from chat.media.domain import MediaRow, ProcessedOutcome
from servicekit.postgres import Connection

_COLUMNS = (
    "id, owner_id, status, content_type, size_bytes, storage_key, filename, width, height, "
    "thumbnail_key, reason, created_at, processed_at"
)


def _media(row: asyncpg.Record) -> MediaRow:
    return MediaRow(**dict(row))


class MediaRepository:
    async def insert_media(self, conn: Connection, media: MediaRow) -> None:
        await conn.execute(
            f"INSERT INTO media ({_COLUMNS}) "  # noqa: S608 - column list is a constant
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            media.id,
            media.owner_id,
            media.status,
            media.content_type,
            media.size_bytes,
            media.storage_key,
            media.filename,
            media.width,
            media.height,
            media.thumbnail_key,
            media.reason,
            media.created_at,
            media.processed_at,
        )

    async def stored_bytes_of(self, conn: Connection, owner_id: UUID) -> int:
        """What the owner's media hold in the blob store (rejected uploads are deleted), with
        the owner's uploads serialized from here to the end of the transaction."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('media:' || $1::uuid::text))", owner_id
        )
        used: int = await conn.fetchval(
            "SELECT coalesce(sum(size_bytes), 0) FROM media "
            "WHERE owner_id = $1 AND status <> 'rejected'",
            owner_id,
        )
        return used

    async def visible_media(
        self, conn: Connection, media_id: UUID, user_id: UUID
    ) -> MediaRow | None:
        """The media if ``user_id`` uploaded it, shares a conversation with a (not deleted)
        message that carries it, or it is its owner's avatar (anyone signed in sees those)."""
        row = await conn.fetchrow(
            f"""
            SELECT {_COLUMNS} FROM media
            WHERE id = $1 AND (
                owner_id = $2
                OR EXISTS (
                    SELECT 1 FROM messages m
                    JOIN participants p
                      ON p.conversation_id = m.conversation_id AND p.user_id = $2
                    WHERE m.attachments @> ARRAY[$1]::uuid[] AND m.deleted_at IS NULL
                )
                OR EXISTS (
                    SELECT 1 FROM users u
                    WHERE u.avatar_media_id = $1 AND u.id = media.owner_id
                      AND u.deleted_at IS NULL
                )
            )
            """,  # noqa: S608 - column list is a constant
            media_id,
            user_id,
        )
        return None if row is None else _media(row)

    async def owned_media(
        self, conn: Connection, owner_id: UUID, media_ids: list[UUID]
    ) -> dict[UUID, MediaRow]:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM media WHERE owner_id = $1 AND id = ANY($2)",  # noqa: S608
            owner_id,
            media_ids,
        )
        return {row["id"]: _media(row) for row in rows}

    async def finish_processing(self, conn: Connection, outcome: ProcessedOutcome) -> bool:
        """Record the worker's outcome on pending media; False when it was already settled
        (or is unknown), so a repeated outcome changes nothing."""
        result = await conn.execute(
            """
            UPDATE media SET status = $3,
                content_type = coalesce($4, content_type),
                width = $5, height = $6, thumbnail_key = $7, reason = $8, processed_at = $9
            WHERE id = $1 AND owner_id = $2 AND status = 'pending'
            """,
            outcome.media_id,
            outcome.owner_id,
            outcome.status,
            outcome.content_type,
            outcome.width,
            outcome.height,
            outcome.thumbnail_key,
            outcome.reason,
            outcome.processed_at,
        )
        return bool(result == "UPDATE 1")
