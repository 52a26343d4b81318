"""In-memory stand-ins for auth's ports (``auth.ports``) and the unit of work, for unit tests of
the use cases: what a real store would hold, kept in dicts, with no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from auth.domain import AlreadyTaken, RefreshTokenState, SessionRow, User
from servicekit.peer_api import PeerUnavailableError
from servicekit.rate_limit import Decision, Limit


@dataclass
class StoredSession:
    user_id: UUID
    user_agent: str | None
    client_ip: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked: str | None = None


@dataclass
class StoredToken:
    session_id: UUID
    expires_at: datetime
    rotated: bool = False


@dataclass
class InMemoryAccounts:
    users: dict[UUID, User] = field(default_factory=dict)
    passwords: dict[UUID, str] = field(default_factory=dict)
    sessions: dict[UUID, StoredSession] = field(default_factory=dict)
    tokens: dict[bytes, StoredToken] = field(default_factory=dict)
    deleted: dict[UUID, datetime] = field(default_factory=dict)
    race_on_insert: str | None = None
    """Set: ``insert_user`` fails as if a concurrent registration took this field."""

    async def taken_fields(self, conn: Any, email: str, username: str) -> list[str]:
        taken = []
        if any(u.email.lower() == email.lower() for u in self.users.values()):
            taken.append("email")
        if any(u.username.lower() == username.lower() for u in self.users.values()):
            taken.append("username")
        return taken

    async def insert_user(self, conn: Any, user: User, password_hash: str) -> None:
        if self.race_on_insert is not None:
            raise AlreadyTaken(self.race_on_insert)
        self.users[user.id] = user
        self.passwords[user.id] = password_hash

    async def find_login(
        self, conn: Any, *, email: str | None, username: str | None
    ) -> tuple[User, str] | None:
        for user in self.users.values():
            if (email is not None and user.email.lower() == email.lower()) or (
                username is not None and user.username.lower() == username.lower()
            ):
                return user, self.passwords[user.id]
        return None

    async def password_hash(self, conn: Any, user_id: UUID) -> str | None:
        return self.passwords.get(user_id)

    async def update_password(
        self, conn: Any, user_id: UUID, password_hash: str, now: datetime
    ) -> None:
        self.passwords[user_id] = password_hash

    async def delete_user(self, conn: Any, user_id: UUID, now: datetime) -> list[UUID]:
        self.users.pop(user_id, None)
        self.passwords.pop(user_id, None)
        self.deleted[user_id] = now
        live = [i for i, s in self.sessions.items() if s.user_id == user_id and not s.revoked]
        for session_id in live:
            self.sessions[session_id].revoked = "account_deleted"
        return live

    async def live_sessions(self, conn: Any, user_id: UUID, now: datetime) -> list[SessionRow]:
        return [
            SessionRow(i, s.user_agent, s.client_ip, s.created_at, s.last_used_at, s.expires_at)
            for i, s in self.sessions.items()
            if s.user_id == user_id and not s.revoked and s.expires_at > now
        ]

    async def session_owner(self, conn: Any, session_id: UUID) -> UUID | None:
        session = self.sessions.get(session_id)
        return None if session is None else session.user_id

    async def forget_deletions_before(self, conn: Any, before: datetime) -> None:
        self.deleted = {u: at for u, at in self.deleted.items() if at >= before}

    async def get_user(self, conn: Any, user_id: UUID) -> User | None:
        return self.users.get(user_id)

    async def search_users(
        self, conn: Any, prefix: str, after: tuple[str, UUID] | None, limit: int
    ) -> list[User]:
        found = sorted(
            (u for u in self.users.values() if u.username.lower().startswith(prefix.lower())),
            key=lambda u: (u.username.lower(), u.id),
        )
        if after is not None:
            found = [u for u in found if (u.username.lower(), u.id) > (after[0].lower(), after[1])]
        return found[:limit]

    async def update_display_name(
        self, conn: Any, user_id: UUID, display_name: str, now: datetime
    ) -> User | None:
        user = self.users.get(user_id)
        if user is None:
            return None
        updated = User(user.id, user.email, user.username, display_name, user.created_at, now)
        self.users[user_id] = updated
        return updated

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
    ) -> None:
        self.sessions[session_id] = StoredSession(
            user_id, user_agent, client_ip, now, now, expires_at
        )

    async def insert_refresh_token(
        self, conn: Any, token_hash: bytes, session_id: UUID, now: datetime, expires_at: datetime
    ) -> None:
        self.tokens[token_hash] = StoredToken(session_id, expires_at)

    async def lock_refresh_token(self, conn: Any, token_hash: bytes) -> RefreshTokenState | None:
        token = self.tokens.get(token_hash)
        if token is None:
            return None
        session = self.sessions[token.session_id]
        return RefreshTokenState(
            session_id=token.session_id,
            user_id=session.user_id,
            rotated=token.rotated,
            token_expires_at=token.expires_at,
            session_revoked=session.revoked is not None,
            session_expires_at=session.expires_at,
        )

    async def mark_rotated(self, conn: Any, token_hash: bytes, now: datetime) -> None:
        self.tokens[token_hash].rotated = True

    async def touch_session(self, conn: Any, session_id: UUID, now: datetime) -> None:
        self.sessions[session_id].last_used_at = now

    async def revoke_session(
        self, conn: Any, session_id: UUID, reason: str, now: datetime
    ) -> UUID | None:
        session = self.sessions.get(session_id)
        if session is None or session.revoked is not None:
            return None
        session.revoked = reason
        return session.user_id


@dataclass
class InMemoryProfiles:
    stored: dict[UUID, dict[str, Any]] = field(default_factory=dict)

    async def get(self, user_id: UUID) -> dict[str, Any]:
        return dict(self.stored.get(user_id, {}))

    async def get_many(self, user_ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
        return {u: dict(self.stored[u]) for u in user_ids if u in self.stored}

    async def update(self, user_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
        profile = self.stored.setdefault(user_id, {})
        profile.update(changes)
        return dict(profile)

    async def delete(self, user_id: UUID) -> None:
        self.stored.pop(user_id, None)


class PlainPasswords:
    """A "hash" anyone can read: the rules, not bcrypt, are under test."""

    async def hash(self, password: str) -> str:
        return f"plain:{password}"

    async def verify(self, password: str, password_hash: str | None) -> bool:
        return password_hash == f"plain:{password}"


@dataclass
class RecordedRevocations:
    sessions: list[UUID] = field(default_factory=list)
    users: list[UUID] = field(default_factory=list)

    async def revoke_session(self, session_id: UUID, ttl_seconds: int) -> None:
        self.sessions.append(session_id)

    async def revoke_user(self, user_id: UUID, ttl_seconds: int) -> None:
        self.users.append(user_id)


@dataclass
class CountingLimiter:
    """Fixed windows that never end: ``hit`` counts, ``reset`` clears."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    async def hit(self, limit: Limit, subject: str) -> Decision:
        key = (limit.name, subject)
        self.counts[key] = self.counts.get(key, 0) + 1
        allowed = self.counts[key] <= limit.max_hits
        return Decision(
            allowed=allowed,
            remaining=max(0, limit.max_hits - self.counts[key]),
            retry_after_seconds=0 if allowed else limit.window_seconds,
        )

    async def reset(self, limit: Limit, subject: str) -> None:
        self.counts.pop((limit.name, subject), None)


@dataclass
class AvatarAnswers:
    problems: dict[UUID, str] = field(default_factory=dict)
    unreachable: bool = False

    async def problem(self, token: str, user_id: UUID, media_id: UUID) -> str | None:
        if self.unreachable:
            raise PeerUnavailableError("chat is down")
        return self.problems.get(media_id)
