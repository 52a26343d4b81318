"""The SQL of what chat keeps about people beyond conversations: who blocked whom, deleted
accounts (tombstones in the directory) and the avatar each user shows."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from servicekit.postgres import Connection

DELETED_DISPLAY_NAME = "Deleted account"


class PeopleRepository:
    async def block(
        self, conn: Connection, blocker_id: UUID, blocked_id: UUID, at: datetime
    ) -> bool:
        """False when the block already existed."""
        result = await conn.execute(
            """
            INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3)
            ON CONFLICT DO NOTHING
            """,
            blocker_id,
            blocked_id,
            at,
        )
        return result.endswith(" 1")

    async def unblock(self, conn: Connection, blocker_id: UUID, blocked_id: UUID) -> bool:
        result = await conn.execute(
            "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2", blocker_id, blocked_id
        )
        return result.endswith(" 1")

    async def blocked_by(self, conn: Connection, blocker_id: UUID) -> list[tuple[UUID, datetime]]:
        rows = await conn.fetch(
            "SELECT blocked_id, created_at FROM blocks WHERE blocker_id = $1 "
            "ORDER BY created_at DESC, blocked_id",
            blocker_id,
        )
        return [(row["blocked_id"], row["created_at"]) for row in rows]

    async def barred(
        self, conn: Connection, user_id: UUID, others: list[UUID]
    ) -> tuple[set[UUID], set[UUID]]:
        """Of ``others``: those ``user_id`` blocked, and those who blocked ``user_id``."""
        rows = await conn.fetch(
            """
            SELECT blocked_id AS other, true AS by_user FROM blocks
            WHERE blocker_id = $1 AND blocked_id = ANY($2::uuid[])
            UNION ALL
            SELECT blocker_id, false FROM blocks
            WHERE blocked_id = $1 AND blocker_id = ANY($2::uuid[])
            """,
            user_id,
            others,
        )
        return (
            {row["other"] for row in rows if row["by_user"]},
            {row["other"] for row in rows if not row["by_user"]},
        )

    async def live_user(self, conn: Connection, user_id: UUID) -> bool:
        found = await conn.fetchval(
            "SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL", user_id
        )
        return found is not None

    # --- deleted accounts ---

    async def mark_deleted(self, conn: Connection, user_id: UUID, at: datetime) -> None:
        """The directory keeps a tombstone (no username, so nobody can mention it); blocks by
        or of the user go. Written even before the user's registration arrives."""
        await conn.execute(
            """
            INSERT INTO users (id, username, display_name, updated_at, deleted_at)
            VALUES ($1, '', $2, $3, $3)
            ON CONFLICT (id) DO UPDATE
            SET username = '', display_name = $2, updated_at = $3, deleted_at = $3
            """,
            user_id,
            DELETED_DISPLAY_NAME,
            at,
        )
        await conn.execute("DELETE FROM blocks WHERE blocker_id = $1 OR blocked_id = $1", user_id)

    async def set_avatar(
        self, conn: Connection, user_id: UUID, media_id: UUID | None, at: datetime
    ) -> bool:
        """False when the user is not in the directory yet (its registration is still on the
        way): the caller retries later. An older change than the one kept changes nothing."""
        found = await conn.fetchval(
            """
            WITH user_row AS (SELECT id FROM users WHERE id = $1), changed AS (
                UPDATE users SET avatar_media_id = $2, avatar_changed_at = $3
                WHERE id = $1 AND (avatar_changed_at IS NULL OR avatar_changed_at <= $3)
            )
            SELECT count(*) FROM user_row
            """,
            user_id,
            media_id,
            at,
        )
        return bool(found)

    async def groups_of(self, conn: Connection, user_id: UUID) -> list[UUID]:
        rows = await conn.fetch(
            """
            SELECT p.conversation_id FROM participants p
            JOIN conversations c ON c.id = p.conversation_id
            WHERE p.user_id = $1 AND c.type = 'group'
            ORDER BY p.conversation_id
            """,
            user_id,
        )
        return [row["conversation_id"] for row in rows]
