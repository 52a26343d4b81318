"""What a signed-in user does to their own account's security: change the password, see their
sessions (devices) and sign one out, delete the account.

Each step that ends sessions writes ``session.revoked`` in the same transaction (the gateways
disconnect those sockets) and the Redis revocation keys after the commit. Asking for the
password again (to change it, to delete the account) counts a wrong one against the same
per-account-and-address limit as a failed login.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from auth.api import (
    ChangePasswordRequest,
    DeleteAccountRequest,
    SessionList,
    SessionView,
)
from auth.config import LoginLimits
from auth.domain import password_errors
from auth.ports import Accounts, Limiter, Passwords, Profiles, Revocations
from auth.session_revocation import revoke_session
from contracts.events import RevocationReason, SessionRevoked, UserDeleted
from servicekit.rate_limit import Limit
from servicekit.refusals import (
    FieldError,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooMany,
)
from servicekit.tokens import AccessClaims
from servicekit.unit_of_work import UnitOfWork, Work

NO_SESSION = "No such session"
GONE = "The account no longer exists"


class AccountService:
    def __init__(
        self,
        *,
        uow: UnitOfWork,
        accounts: Accounts,
        profiles: Profiles,
        hasher: Passwords,
        revocations: Revocations,
        limiter: Limiter,
        limits: LoginLimits,
        access_token_seconds: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._accounts = accounts
        self._profiles = profiles
        self._hasher = hasher
        self._revocations = revocations
        self._limiter = limiter
        self._access_token_seconds = access_token_seconds
        self._clock = clock
        self._failures = Limit(
            "login:account-address", limits.account_failures, limits.window_seconds
        )

    async def change_password(
        self, claims: AccessClaims, request: ChangePasswordRequest, client_ip: str | None
    ) -> None:
        """The new password, and every other session of the user ends; this one goes on."""
        errors = [
            FieldError("newPassword", error.message)
            for error in password_errors(request.new_password)
        ]
        if errors:
            raise InvalidInput(errors)
        await self._confirm_password(
            claims.user_id, request.current_password, "currentPassword", client_ip
        )
        new_hash = await self._hasher.hash(request.new_password)
        now = self._clock()
        async with self._uow.transaction() as work:
            await self._accounts.update_password(work.conn, claims.user_id, new_hash, now)
            live = await self._accounts.live_sessions(work.conn, claims.user_id, now)
            ended = await self._revoke_all(
                work, [s.id for s in live if s.id != claims.session_id], "password_changed", now
            )
        await self._write_revocations(ended)

    async def sessions(self, claims: AccessClaims) -> SessionList:
        async with self._uow.reading() as work:
            live = await self._accounts.live_sessions(work.conn, claims.user_id, self._clock())
        return SessionList(
            sessions=[
                SessionView(
                    id=session.id,
                    device=session.user_agent,
                    ip_address=session.client_ip,
                    created_at=session.created_at,
                    last_used_at=session.last_used_at,
                    expires_at=session.expires_at,
                    current=session.id == claims.session_id,
                )
                for session in live
            ]
        )

    async def sign_out(self, claims: AccessClaims, session_id: uuid.UUID) -> None:
        """End one of the caller's sessions (this one too, if named); 404 for anyone else's,
        an unknown one, or one already ended."""
        now = self._clock()
        async with self._uow.transaction() as work:
            if await self._accounts.session_owner(work.conn, session_id) != claims.user_id:
                raise NotFound(NO_SESSION)
            ended = await self._revoke_all(work, [session_id], "signed_out", now)
        if not ended:
            raise NotFound(NO_SESSION)
        await self._write_revocations(ended)

    async def delete_account(
        self, claims: AccessClaims, request: DeleteAccountRequest, client_ip: str | None
    ) -> None:
        """Delete the caller's account with its password: every session ends, every token of
        the user is refused at once, and ``user.deleted`` tells the other services to forget
        the user."""
        await self._confirm_password(claims.user_id, request.password, "password", client_ip)
        now = self._clock()
        async with self._uow.transaction() as work:
            sessions = await self._accounts.delete_user(work.conn, claims.user_id, now)
            # The durable record keeps a deletion for one access-token lifetime: every token of
            # that user has expired by then, and a rebuild reads no older row. Each deletion
            # prunes the ones past it.
            await self._accounts.forget_deletions_before(
                work.conn, now - timedelta(seconds=self._access_token_seconds)
            )
            ended = [
                SessionRevoked(
                    user_id=claims.user_id,
                    session_id=session_id,
                    reason="account_deleted",
                    revoked_at=now,
                    expires_at=now + timedelta(seconds=self._access_token_seconds),
                )
                for session_id in sessions
            ]
            work.emit(*ended, UserDeleted(user_id=claims.user_id, deleted_at=now))
        # After the commit, as a logout writes its session's key.
        await self._revocations.revoke_user(claims.user_id, self._access_token_seconds)
        await self._profiles.delete(claims.user_id)

    async def _confirm_password(
        self, user_id: uuid.UUID, password: str, field: str, client_ip: str | None
    ) -> None:
        subject = f"{user_id}|{client_ip or 'unknown'}"
        decision = await self._limiter.hit(self._failures, subject)
        if not decision.allowed:
            raise TooMany("Too many wrong passwords for this account", decision.retry_after_seconds)
        async with self._uow.reading() as work:
            password_hash = await self._accounts.password_hash(work.conn, user_id)
        if password_hash is None:
            raise NotAuthenticated(GONE)
        if not await self._hasher.verify(password, password_hash):
            raise Forbidden(
                "The password is wrong",
                errors=[FieldError(field, "is not this account's password")],
            )
        await self._limiter.reset(self._failures, subject)

    async def _revoke_all(
        self,
        work: Work,
        session_ids: list[uuid.UUID],
        reason: RevocationReason,
        now: datetime,
    ) -> list[SessionRevoked]:
        ended = []
        for session_id in session_ids:
            event = await revoke_session(
                work,
                self._accounts,
                session_id,
                reason=reason,
                now=now,
                access_token_seconds=self._access_token_seconds,
            )
            if event is not None:
                ended.append(event)
        return ended

    async def _write_revocations(self, ended: list[SessionRevoked]) -> None:
        for event in ended:
            await self._revocations.revoke_session(event.session_id, self._access_token_seconds)
