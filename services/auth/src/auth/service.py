"""Auth use cases: accounts, sessions with rotating refresh tokens, profiles. No HTTP here.

Every state change that others must learn about (a new account, a new display name, a revoked
session) writes its event to the outbox in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from auth.api import (
    AuthResult,
    LoginRequest,
    Profile,
    PublicUser,
    RegisterRequest,
    SearchQuery,
    UpdateMeRequest,
    UserPage,
    UserView,
)
from auth.config import LoginLimits
from auth.domain import (
    AlreadyTaken,
    NewSession,
    User,
    display_name_errors,
    email_errors,
    new_refresh_token,
    password_errors,
    refresh_token_hash,
    username_errors,
)
from auth.ports import Accounts, Limiter, Passwords, Profiles, Revocations
from auth.session_revocation import revoke_session
from contracts.events import RevocationReason, SessionRevoked, UserRegistered, UserUpdated
from servicekit.display_text import normalized_name
from servicekit.page_cursors import name_cursor, parse_name_cursor
from servicekit.rate_limit import Limit
from servicekit.refusals import (
    Conflict,
    FieldError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooMany,
)
from servicekit.tokens import AccessClaims, TokenIssuer
from servicekit.unit_of_work import UnitOfWork, Work

INVALID_CREDENTIALS = "Invalid email, username or password"
INVALID_REFRESH = "The refresh token is invalid, expired or revoked"
ACCOUNT_GONE = "The account no longer exists"


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str | None
    user_agent: str | None


class AuthService:
    def __init__(
        self,
        *,
        uow: UnitOfWork,
        accounts: Accounts,
        profiles: Profiles,
        hasher: Passwords,
        issuer: TokenIssuer,
        revocations: Revocations,
        limiter: Limiter,
        limits: LoginLimits,
        access_token_seconds: int,
        refresh_token_seconds: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._accounts = accounts
        self._profiles = profiles
        self._hasher = hasher
        self._issuer = issuer
        self._revocations = revocations
        self._limiter = limiter
        self._access_token_seconds = access_token_seconds
        self._refresh_token_seconds = refresh_token_seconds
        self._clock = clock
        window = limits.window_seconds
        self._account_failures = Limit("login:account-address", limits.account_failures, window)
        self._account_ceiling = Limit(
            "login:account", limits.account_failures_all_addresses, window
        )
        self._ip_attempts = Limit("login:ip", limits.ip_attempts, window)
        self._ip_registrations = Limit("register:ip", limits.ip_registrations, 3600)

    # --- accounts -----------------------------------------------------------------------

    async def register(self, request: RegisterRequest, client: ClientInfo) -> AuthResult:
        display_name = normalized_name(
            request.display_name if request.display_name is not None else request.username
        )
        errors = [
            *email_errors(request.email),
            *username_errors(request.username),
            *password_errors(request.password),
            *display_name_errors(display_name),
        ]
        if errors:
            raise InvalidInput(errors)
        await self._check(self._ip_registrations, client.ip, "Too many registrations")
        async with self._uow.reading() as work:
            taken = await self._accounts.taken_fields(work.conn, request.email, request.username)
        if taken:
            raise _conflict(taken)
        password_hash = await self._hasher.hash(request.password)
        now = self._clock()
        user = User(uuid.uuid4(), request.email, request.username, display_name, now, now)
        event = UserRegistered(
            user_id=user.id,
            email=user.email,
            username=user.username,
            display_name=user.display_name,
            created_at=now,
        )
        try:
            async with self._uow.transaction() as work:
                await self._accounts.insert_user(work.conn, user, password_hash)
                work.emit(event)
                session = await self._open_session(work, user.id, client, now)
        except AlreadyTaken as taken_meanwhile:  # a concurrent registration won
            raise _conflict([taken_meanwhile.field]) from None
        return self._result(user, {}, session, now)

    async def login(self, request: LoginRequest, client: ClientInfo) -> AuthResult:
        if (request.email is None) == (request.username is None):
            raise InvalidInput(
                [FieldError("email", "send either email or username, with password")]
            )
        account = (request.email or request.username or "").lower()
        await self._check(self._ip_attempts, client.ip, "Too many login attempts")
        # Counted before the check, atomically: concurrent guesses cannot all slip under the
        # limit while their hashes run. A success clears the counts, so they count failures.
        # Per account *and address*: nobody can lock a user out from elsewhere by guessing
        # wrong; the ceiling over every address bounds guesses spread over many of them.
        from_here = f"{account}|{client.ip or 'unknown'}"
        await self._check(
            self._account_failures,
            from_here,
            "Too many failed logins for this account from this address",
        )
        await self._check(self._account_ceiling, account, "Too many failed logins for this account")
        async with self._uow.reading() as work:
            found = await self._accounts.find_login(
                work.conn, email=request.email, username=request.username
            )
        password_hash = found[1] if found else None
        if not await self._hasher.verify(request.password, password_hash) or found is None:
            raise NotAuthenticated(INVALID_CREDENTIALS)
        user = found[0]
        await self._limiter.reset(self._account_failures, from_here)
        await self._limiter.reset(self._account_ceiling, account)
        now = self._clock()
        async with self._uow.transaction() as work:
            session = await self._open_session(work, user.id, client, now)
        return self._result(user, await self._profiles.get(user.id), session, now)

    async def refresh(self, refresh_token: str, client: ClientInfo) -> AuthResult:
        token_hash = refresh_token_hash(refresh_token)
        now = self._clock()
        reused: SessionRevoked | None = None
        async with self._uow.transaction() as work:
            conn = work.conn
            state = await self._accounts.lock_refresh_token(conn, token_hash)
            if state is None or state.session_revoked:
                raise NotAuthenticated(INVALID_REFRESH)
            if state.rotated:
                # A rotated token came back: someone holds a copy. End the whole family.
                reused = await self._revoke(work, state.session_id, "refresh_reuse", now)
            elif state.token_expires_at <= now or state.session_expires_at <= now:
                raise NotAuthenticated(INVALID_REFRESH)
            else:
                await self._accounts.mark_rotated(conn, token_hash, now)
                await self._accounts.touch_session(conn, state.session_id, now)
                session = await self._new_refresh_token(
                    work, state.session_id, state.session_expires_at, now
                )
                user = await self._accounts.get_user(conn, state.user_id)
        if reused is not None:
            await self._revocations.revoke_session(reused.session_id, self._access_token_seconds)
            raise NotAuthenticated("Refresh token reuse detected; the session was revoked")
        if user is None:
            raise NotAuthenticated(INVALID_REFRESH)
        return self._result(user, await self._profiles.get(user.id), session, now)

    async def logout(self, claims: AccessClaims) -> None:
        async with self._uow.transaction() as work:
            await self._revoke(work, claims.session_id, "logout", self._clock())
        # Written even when already revoked: a retried logout repairs a lost Redis write.
        await self._revocations.revoke_session(claims.session_id, self._access_token_seconds)

    # --- users and profiles -------------------------------------------------------------

    async def me(self, user_id: uuid.UUID) -> UserView:
        async with self._uow.reading() as work:
            user = await self._accounts.get_user(work.conn, user_id)
        if user is None:
            raise NotAuthenticated(ACCOUNT_GONE)
        return _user_view(user, await self._profiles.get(user_id))

    async def public_user(self, user_id: uuid.UUID) -> PublicUser:
        async with self._uow.reading() as work:
            user = await self._accounts.get_user(work.conn, user_id)
        if user is None:
            raise NotFound("No such user")
        return _public_user(user, await self._profiles.get(user_id))

    async def search(self, query: SearchQuery) -> UserPage:
        after = _decode_cursor(query.cursor) if query.cursor else None
        async with self._uow.reading() as work:
            found = await self._accounts.search_users(work.conn, query.q, after, query.limit + 1)
        page = found[: query.limit]
        profiles = await self._profiles.get_many([user.id for user in page])
        next_cursor = _encode_cursor(page[-1]) if len(found) > query.limit else None
        return UserPage(
            users=[_public_user(user, profiles.get(user.id, {})) for user in page],
            next_cursor=next_cursor,
        )

    async def update_me(self, user_id: uuid.UUID, request: UpdateMeRequest) -> UserView:
        display_name = normalized_name(request.display_name)
        errors = display_name_errors(display_name)
        if errors:
            raise InvalidInput(errors)
        now = self._clock()
        async with self._uow.transaction() as work:
            user = await self._accounts.update_display_name(work.conn, user_id, display_name, now)
            if user is None:
                raise NotAuthenticated(ACCOUNT_GONE)
            event = UserUpdated(
                user_id=user.id,
                username=user.username,
                display_name=user.display_name,
                updated_at=now,
            )
            work.emit(event)
        return _user_view(user, await self._profiles.get(user_id))

    # --- sessions -----------------------------------------------------------------------

    async def _open_session(
        self, work: Work, user_id: uuid.UUID, client: ClientInfo, now: datetime
    ) -> NewSession:
        session_id = uuid.uuid4()
        expires_at = now + timedelta(seconds=self._refresh_token_seconds)
        await self._accounts.insert_session(
            work.conn,
            session_id=session_id,
            user_id=user_id,
            user_agent=(client.user_agent or "")[:512] or None,
            client_ip=client.ip,
            now=now,
            expires_at=expires_at,
        )
        return await self._new_refresh_token(work, session_id, expires_at, now)

    async def _new_refresh_token(
        self, work: Work, session_id: uuid.UUID, session_expires_at: datetime, now: datetime
    ) -> NewSession:
        token = new_refresh_token()
        await self._accounts.insert_refresh_token(
            work.conn, refresh_token_hash(token), session_id, now, session_expires_at
        )
        return NewSession(session_id, token, session_expires_at)

    async def _revoke(
        self, work: Work, session_id: uuid.UUID, reason: RevocationReason, now: datetime
    ) -> SessionRevoked | None:
        return await revoke_session(
            work,
            self._accounts,
            session_id,
            reason=reason,
            now=now,
            access_token_seconds=self._access_token_seconds,
        )

    def _result(
        self, user: User, profile: dict[str, Any], session: NewSession, now: datetime
    ) -> AuthResult:
        issued = self._issuer.issue(user.id, session.id, now)
        return AuthResult(
            user=_user_view(user, profile),
            token=issued.token,
            expires_at=issued.claims.expires_at,
            refresh_token=session.refresh_token,
        )

    async def _check(self, limit: Limit, subject: str | None, detail: str) -> None:
        decision = await self._limiter.hit(limit, subject or "unknown")
        if not decision.allowed:
            raise TooMany(detail, decision.retry_after_seconds)


def _conflict(fields: list[str]) -> Conflict:
    return Conflict(
        f"{' and '.join(fields)} already taken",
        errors=[FieldError(field, "is already taken") for field in fields],
    )


def _profile(stored: dict[str, Any]) -> Profile:
    return msgspec.convert(stored, Profile, strict=False)


def _user_view(user: User, profile: dict[str, Any]) -> UserView:
    return UserView(
        id=user.id,
        email=user.email,
        username=user.username,
        display_name=user.display_name,
        created_at=user.created_at,
        updated_at=user.updated_at,
        profile=_profile(profile),
    )


def _public_user(user: User, profile: dict[str, Any]) -> PublicUser:
    return PublicUser(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        created_at=user.created_at,
        profile=_profile(profile),
    )


def _encode_cursor(user: User) -> str:
    return name_cursor(user.username, user.id)


def _decode_cursor(cursor: str) -> tuple[str, uuid.UUID]:
    try:
        return parse_name_cursor(cursor)
    except ValueError:
        raise InvalidInput([FieldError("cursor", "is not a cursor this API gave")]) from None
