"""Access tokens: HS256 JWTs with pinned algorithm and checked claims, and the revocation list.

Auth issues tokens; every service verifies them the same way and checks the revocation keys auth
writes in Redis (a logged-out session, a single revoked token, a deleted account).

Those keys are a cache of auth's durable record (revoked sessions and deleted accounts in its
Postgres). Beside them auth keeps ``auth:revoked:complete``: present only while the keys are
whole. Should Redis lose its data (a restart without persistence, a failover, a flush), the
marker is gone with the keys, and every verifier refuses to guess (``RevocationsUnknownError``,
a 503 with ``Retry-After``) until auth has rebuilt the keys from Postgres and written the
marker again in the same transaction (docs/auth.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from aiohttp import web

from servicekit.problems import ProblemError
from servicekit.redis_store import KeySpace, Redis
from servicekit.settings import JwtSettings

ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "sid", "jti", "iat", "exp", "iss", "aud"]


class InvalidTokenError(Exception):
    """The token is malformed, forged, expired, for someone else, or revoked."""


class RevocationsUnknownError(Exception):
    """Redis lost the revocation keys and auth has not rebuilt them yet: whether a token is
    revoked cannot be told, so it is not accepted (ask again in a moment)."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    token_id: uuid.UUID
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: AccessClaims


class TokenIssuer:
    def __init__(self, settings: JwtSettings) -> None:
        self._settings = settings

    def issue(
        self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime | None = None
    ) -> IssuedToken:
        issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
        claims = AccessClaims(
            user_id=user_id,
            session_id=session_id,
            token_id=uuid.uuid4(),
            issued_at=issued_at,
            expires_at=issued_at + timedelta(seconds=self._settings.expiration_seconds),
        )
        payload = {
            "sub": str(user_id),
            "sid": str(session_id),
            "jti": str(claims.token_id),
            "iat": int(issued_at.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
        }
        token = jwt.encode(payload, self._settings.secret, algorithm=ALGORITHM)
        return IssuedToken(token, claims)


class RevocationList:
    """Revoked sessions, token ids and deleted accounts, as Redis keys that expire with the last
    token they stop."""

    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys

    def _session_key(self, session_id: uuid.UUID) -> str:
        return self._keys.key("auth", "revoked", "sid", str(session_id))

    def _token_key(self, token_id: uuid.UUID) -> str:
        return self._keys.key("auth", "revoked", "jti", str(token_id))

    def _user_key(self, user_id: uuid.UUID) -> str:
        return self._keys.key("auth", "revoked", "sub", str(user_id))

    async def revoke_user(self, user_id: uuid.UUID, ttl_seconds: int) -> None:
        """Every token of the user: the account no longer exists."""
        await self._redis.set(self._user_key(user_id), b"1", ex=max(ttl_seconds, 1))

    def _complete_key(self) -> str:
        return self._keys.key("auth", "revoked", "complete")

    async def is_complete(self) -> bool:
        return bool(await self._redis.exists(self._complete_key()))

    async def rebuild(
        self, sessions: list[tuple[uuid.UUID, int]], users: list[tuple[uuid.UUID, int]]
    ) -> None:
        """Write the keys of revoked sessions and deleted users, each with its remaining
        seconds, and the marker that says they are whole, all in one transaction: a loss in
        the middle takes the marker too."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for session_id, seconds in sessions:
                pipe.set(self._session_key(session_id), b"1", ex=max(seconds, 1))
            for user_id, seconds in users:
                pipe.set(self._user_key(user_id), b"1", ex=max(seconds, 1))
            pipe.set(self._complete_key(), b"1")
            await pipe.execute()

    async def revoke_session(self, session_id: uuid.UUID, ttl_seconds: int) -> None:
        await self._redis.set(self._session_key(session_id), b"1", ex=max(ttl_seconds, 1))

    async def revoke_token(self, token_id: uuid.UUID, ttl_seconds: int) -> None:
        await self._redis.set(self._token_key(token_id), b"1", ex=max(ttl_seconds, 1))

    async def is_revoked(self, claims: AccessClaims) -> bool:
        """One round trip; raises ``RevocationsUnknownError`` while the keys are not whole."""
        *found, complete = await self._redis.mget(
            self._session_key(claims.session_id),
            self._token_key(claims.token_id),
            self._user_key(claims.user_id),
            self._complete_key(),
        )
        if complete is None:
            raise RevocationsUnknownError("revocations are being rebuilt")
        return any(value is not None for value in found)


def decode_access_token(token: str, settings: JwtSettings) -> AccessClaims:
    """An access token's claims once its signature, algorithm (pinned), issuer, audience and
    expiry hold; no I/O (revocation is ``TokenVerifier.verify``'s)."""
    try:
        payload = jwt.decode(
            token,
            settings.secret,
            algorithms=[ALGORITHM],
            audience=settings.audience,
            issuer=settings.issuer,
            options={"require": _REQUIRED_CLAIMS},
        )
        return AccessClaims(
            user_id=uuid.UUID(payload["sub"]),
            session_id=uuid.UUID(payload["sid"]),
            token_id=uuid.UUID(payload["jti"]),
            issued_at=datetime.fromtimestamp(payload["iat"], UTC),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )
    # A signed but odd claim (a non-string sid, an exp past year 9999) is still invalid.
    except (
        jwt.PyJWTError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        OverflowError,
    ) as error:
        raise InvalidTokenError(str(error) or type(error).__name__) from None


class TokenVerifier:
    def __init__(self, settings: JwtSettings, revocations: RevocationList) -> None:
        self._settings = settings
        self._revocations = revocations

    def decode(self, token: str) -> AccessClaims:
        """Signature, algorithm, issuer, audience and expiry; no I/O."""
        return decode_access_token(token, self._settings)

    async def verify(self, token: str) -> AccessClaims:
        claims = self.decode(token)
        if await self._revocations.is_revoked(claims):
            raise InvalidTokenError("token has been revoked")
        return claims


TOKEN_VERIFIER = web.AppKey("token_verifier", TokenVerifier)


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def caller_token(request: web.Request) -> str:
    """The bearer token of an authenticated request, to ask another service as the caller."""
    return bearer_token(request.headers.get("Authorization")) or ""


async def authenticate(request: web.Request) -> AccessClaims:
    """The caller's verified claims, or a 401 problem with ``WWW-Authenticate``."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise ProblemError(
            401, "Send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        return await request.app[TOKEN_VERIFIER].verify(token)
    except RevocationsUnknownError:
        raise ProblemError(
            503,
            "Tokens cannot be checked for a moment; retry",
            title="Service Unavailable",
            headers={"Retry-After": "1"},
        ) from None
    except InvalidTokenError as error:
        raise ProblemError(
            401,
            f"Invalid token: {error}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
