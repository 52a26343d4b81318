"""All of auth's SQL, one method per query. Methods take the connection, so the service decides
what shares a transaction (an account and its outbox event, a rotation and its new token)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from auth.domain import AlreadyTaken, RefreshTokenState, SessionRow, User
from servicekit.postgres import Connection

_USER_COLUMNS = "id, email, username, display_name, created_at, updated_at"


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        username=row["username"],
        display_name=row["display_name"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class AccountRepository:
    async def taken_fields(self, conn: Connection, email: str, username: str) -> list[str]:
        row = await conn.fetchrow(
            """
            SELECT bool_or(lower(email) = lower($1)) AS email,
                   bool_or(lower(username) = lower($2)) AS username
            FROM users WHERE lower(email) = lower($1) OR lower(username) = lower($2)
            """,
            email,
            username,
        )
        return [name for name in ("email", "username") if row is not None and row[name]]

    async def insert_user(self, conn: Connection, user: User, password_hash: str) -> None:
        """Raises ``AlreadyTaken`` when a concurrent registration took the email or username."""
        try:
            await conn.execute(
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)",  # noqa: S608
                user.id,
                user.email,
                user.username,
                user.display_name,
                user.created_at,
                user.updated_at,
            )
        except asyncpg.UniqueViolationError as error:
            taken = "email" if "email" in (error.constraint_name or "") else "username"
            raise AlreadyTaken(taken) from None
        await conn.execute(
            "INSERT INTO credentials (user_id, password_hash, updated_at) VALUES ($1, $2, $3)",
            user.id,
            password_hash,
            user.created_at,
        )

    async def find_login(
        self, conn: Connection, *, email: str | None, username: str | None
    ) -> tuple[User, str] | None:
        column = "email" if email is not None else "username"
        value = email if email is not None else username
        if value is None or "\x00" in value:  # Postgres text cannot hold NUL: nothing matches
            return None
        row = await conn.fetchrow(
            f"""
            SELECT u.id, u.email, u.username, u.display_name, u.created_at, u.updated_at,
                   c.password_hash
            FROM users u JOIN credentials c ON c.user_id = u.id
            WHERE lower(u.{column}) = lower($1)
            """,  # noqa: S608 - the column name is one of two literals
            value,
        )
        return None if row is None else (_user(row), row["password_hash"])

    async def password_hash(self, conn: Connection, user_id: UUID) -> str | None:
        found: str | None = await conn.fetchval(
            "SELECT password_hash FROM credentials WHERE user_id = $1", user_id
        )
        return found

    async def update_password(
        self, conn: Connection, user_id: UUID, password_hash: str, now: datetime
    ) -> None:
        await conn.execute(
            "UPDATE credentials SET password_hash = $2, updated_at = $3 WHERE user_id = $1",
            user_id,
            password_hash,
            now,
        )

    async def delete_user(self, conn: Connection, user_id: UUID, now: datetime) -> list[UUID]:
        """Delete the account (its credentials, sessions and refresh tokens go with it) and
        record the deletion; the sessions that were still live. Email and username are free
        again."""
        rows = await conn.fetch(
            """
            WITH live AS (
                SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL FOR UPDATE
            ), gone AS (DELETE FROM users WHERE id = $1)
            SELECT id FROM live
            """,
            user_id,
        )
        await conn.execute(
            "INSERT INTO deleted_accounts (user_id, deleted_at) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            user_id,
            now,
        )
        return [row["id"] for row in rows]

    async def live_sessions(
        self, conn: Connection, user_id: UUID, now: datetime
    ) -> list[SessionRow]:
        """The user's sessions that are neither revoked nor expired, most recently used first."""
        rows = await conn.fetch(
            """
            SELECT id, user_agent, client_ip, created_at, last_used_at, expires_at
            FROM sessions
            WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
            ORDER BY last_used_at DESC, id
            """,
            user_id,
            now,
        )
        return [
            SessionRow(
                id=row["id"],
                user_agent=row["user_agent"],
                client_ip=row["client_ip"],
                created_at=row["created_at"],
                last_used_at=row["last_used_at"],
                expires_at=row["expires_at"],
            )
            for row in rows
        ]

    async def session_owner(self, conn: Connection, session_id: UUID) -> UUID | None:
        owner: UUID | None = await conn.fetchval(
            "SELECT user_id FROM sessions WHERE id = $1", session_id
        )
        return owner

    # --- the durable record the revocation keys are rebuilt from ---

    async def revoked_since(
        self, conn: Connection, since: datetime
    ) -> tuple[list[tuple[UUID, datetime]], list[tuple[UUID, datetime]]]:
        """Sessions revoked and accounts deleted after ``since``, with when."""
        sessions = await conn.fetch(
            "SELECT id, revoked_at FROM sessions WHERE revoked_at > $1", since
        )
        accounts = await conn.fetch(
            "SELECT user_id, deleted_at FROM deleted_accounts WHERE deleted_at > $1", since
        )
        return (
            [(row["id"], row["revoked_at"]) for row in sessions],
            [(row["user_id"], row["deleted_at"]) for row in accounts],
        )

    async def forget_deletions_before(self, conn: Connection, before: datetime) -> None:
        """Deletions no token outlives any more. Rows another transaction is forgetting are
        skipped, so concurrent account deletions and rebuilds neither wait on nor deadlock
        each other over them."""
        await conn.execute(
            """
            DELETE FROM deleted_accounts WHERE user_id IN (
                SELECT user_id FROM deleted_accounts WHERE deleted_at <= $1
                FOR UPDATE SKIP LOCKED
            )
            """,
            before,
        )

    async def get_user(self, conn: Connection, user_id: UUID) -> User | None:
        row = await conn.fetchrow(
            f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1",  # noqa: S608
            user_id,
        )
        return None if row is None else _user(row)

    async def search_users(
        self, conn: Connection, prefix: str, after: tuple[str, UUID] | None, limit: int
    ) -> list[User]:
        """Users whose username or display name starts with ``prefix``, by username."""
        if "\x00" in prefix:  # Postgres text cannot hold NUL: nothing matches
            return []
        pattern = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await conn.fetch(
            f"""
            SELECT {_USER_COLUMNS} FROM users
            WHERE (lower(username) LIKE $1 || '%' OR lower(display_name) LIKE $1 || '%')
              AND ($2::text IS NULL OR (lower(username), id) > ($2, $3::uuid))
            ORDER BY lower(username), id
            LIMIT $4
            """,  # noqa: S608
            pattern,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [_user(row) for row in rows]

    async def update_display_name(
        self, conn: Connection, user_id: UUID, display_name: str, now: datetime
    ) -> User | None:
        row = await conn.fetchrow(
            f"""
            UPDATE users SET display_name = $2, updated_at = $3 WHERE id = $1
            RETURNING {_USER_COLUMNS}
            """,  # noqa: S608
            user_id,
            display_name,
            now,
        )
        return None if row is None else _user(row)

    async def insert_session(
        self,
        conn: Connection,
        *,
        session_id: UUID,
        user_id: UUID,
        user_agent: str | None,
        client_ip: str | None,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        await conn.execute(
            """
            INSERT INTO sessions (id, user_id, user_agent, client_ip, created_at, last_used_at,
                                  expires_at)
            VALUES ($1, $2, $3, $4, $5, $5, $6)
            """,
            session_id,
            user_id,
            user_agent,
            client_ip,
            now,
            expires_at,
        )

    async def insert_refresh_token(
        self,
        conn: Connection,
        token_hash: bytes,
        session_id: UUID,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        await conn.execute(
            """
            INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at)
            VALUES ($1, $2, $3, $4)
            """,
            token_hash,
            session_id,
            now,
            expires_at,
        )

    async def lock_refresh_token(
        self, conn: Connection, token_hash: bytes
    ) -> RefreshTokenState | None:
        """The token and its session, locked: two refreshes with one token run one at a time."""
        row = await conn.fetchrow(
            """
            SELECT t.session_id, s.user_id, t.rotated_at IS NOT NULL AS rotated,
                   t.expires_at AS token_expires_at, s.revoked_at IS NOT NULL AS session_revoked,
                   s.expires_at AS session_expires_at
            FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
            WHERE t.token_hash = $1
            FOR UPDATE OF t, s
            """,
            token_hash,
        )
        if row is None:
            return None
        return RefreshTokenState(
            session_id=row["session_id"],
            user_id=row["user_id"],
            rotated=row["rotated"],
            token_expires_at=row["token_expires_at"],
            session_revoked=row["session_revoked"],
            session_expires_at=row["session_expires_at"],
        )

    async def mark_rotated(self, conn: Connection, token_hash: bytes, now: datetime) -> None:
        await conn.execute(
            "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1", token_hash, now
        )

    async def touch_session(self, conn: Connection, session_id: UUID, now: datetime) -> None:
        await conn.execute("UPDATE sessions SET last_used_at = $2 WHERE id = $1", session_id, now)

    async def revoke_session(
        self, conn: Connection, session_id: UUID, reason: str, now: datetime
    ) -> UUID | None:
        """Revoke if still live; returns the owner when this call revoked it."""
        owner: UUID | None = await conn.fetchval(
            """
            UPDATE sessions SET revoked_at = $3, revoked_reason = $2
            WHERE id = $1 AND revoked_at IS NULL
            RETURNING user_id
            """,
            session_id,
            reason,
            now,
        )
        return owner
