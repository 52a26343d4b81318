"""What auth's use cases need from the world, as protocols: Postgres (``AccountRepository``),
MongoDB (``ProfileStore``), bcrypt (``PasswordHasher``) and Redis (revocations, rate limits)
satisfy them in production; the unit tests pass in-memory fakes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from auth.domain import RefreshTokenState, SessionRow, User
from servicekit.rate_limit import Decision, Limit


class Accounts(Protocol):
    """Accounts, credentials and sessions; every method runs on the unit of work's ``conn``.
    ``insert_user`` raises ``AlreadyTaken`` when an email or username is taken."""

    async def taken_fields(self, conn: Any, email: str, username: str) -> list[str]: ...

    async def insert_user(self, conn: Any, user: User, password_hash: str) -> None: ...

    async def find_login(
        self, conn: Any, *, email: str | None, username: str | None
    ) -> tuple[User, str] | None: ...

    async def password_hash(self, conn: Any, user_id: UUID) -> str | None: ...

    async def update_password(
        self, conn: Any, user_id: UUID, password_hash: str, now: datetime
    ) -> None: ...

    async def delete_user(self, conn: Any, user_id: UUID, now: datetime) -> list[UUID]: ...

    async def live_sessions(self, conn: Any, user_id: UUID, now: datetime) -> list[SessionRow]: ...

    async def session_owner(self, conn: Any, session_id: UUID) -> UUID | None: ...

    async def forget_deletions_before(self, conn: Any, before: datetime) -> None: ...

    async def get_user(self, conn: Any, user_id: UUID) -> User | None: ...

    async def search_users(
        self, conn: Any, prefix: str, after: tuple[str, UUID] | None, limit: int
    ) -> list[User]: ...

    async def update_display_name(
        self, conn: Any, user_id: UUID, display_name: str, now: datetime
    ) -> User | None: ...

    async def insert_session(
        self,
        conn: Any,
        *,
        session_id: UUID,
        user_id: UUID,
        user_agent: str | None,
        client_ip: str | None,
        now: datetime,
        expires_at: datetime,
    ) -> None: ...

    async def insert_refresh_token(
        self, conn: Any, token_hash: bytes, session_id: UUID, now: datetime, expires_at: datetime
    ) -> None: ...

    async def lock_refresh_token(
        self, conn: Any, token_hash: bytes
    ) -> RefreshTokenState | None: ...

    async def mark_rotated(self, conn: Any, token_hash: bytes, now: datetime) -> None: ...

    async def touch_session(self, conn: Any, session_id: UUID, now: datetime) -> None: ...

    async def revoke_session(
        self, conn: Any, session_id: UUID, reason: str, now: datetime
    ) -> UUID | None: ...


class Profiles(Protocol):
    async def get(self, user_id: UUID) -> dict[str, Any]: ...

    async def get_many(self, user_ids: list[UUID]) -> dict[UUID, dict[str, Any]]: ...

    async def update(self, user_id: UUID, changes: dict[str, Any]) -> dict[str, Any]: ...

    async def delete(self, user_id: UUID) -> None: ...


class Passwords(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str | None) -> bool: ...


class Revocations(Protocol):
    """The Redis keys every service checks; written after the commit that ends a session."""

    async def revoke_session(self, session_id: UUID, ttl_seconds: int) -> None: ...

    async def revoke_user(self, user_id: UUID, ttl_seconds: int) -> None: ...


class Limiter(Protocol):
    async def hit(self, limit: Limit, subject: str) -> Decision: ...

    async def reset(self, limit: Limit, subject: str) -> None: ...


class Avatars(Protocol):
    async def problem(self, token: str, user_id: UUID, media_id: UUID) -> str | None:
        """Why ``media_id`` cannot be the user's avatar, or None; raises
        ``PeerUnavailableError`` when that cannot be asked."""
        ...
