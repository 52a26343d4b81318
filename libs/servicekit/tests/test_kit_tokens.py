"""Access tokens: issue and verify round-trip, every classic JWT attack refused, revocation in
real Redis, and ``authenticate`` answering 401 problems through a real app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from devstack.isolation import REDIS_URL, IsolatedInfra
from servicekit.http_app import create_service_app, json_response
from servicekit.problems import PROBLEM_CONTENT_TYPE
from servicekit.redis_store import KeySpace, Redis
from servicekit.settings import HttpSettings, JwtSettings
from servicekit.tokens import (
    TOKEN_VERIFIER,
    AccessClaims,
    InvalidTokenError,
    IssuedToken,
    RevocationList,
    RevocationsUnknownError,
    TokenIssuer,
    TokenVerifier,
    authenticate,
    bearer_token,
)

SECRET = "kit-tokens-test-secret-" + "0123456789abcdef" * 3
SETTINGS = JwtSettings(
    secret=SECRET, expiration_seconds=900, issuer="chat-auth", audience="chat-api"
)
HTTP = HttpSettings(
    host="127.0.0.1", port=0, max_body_bytes=1024, shutdown_timeout=1, use_uvloop=False
)

Client = TestClient[web.Request, web.Application]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def hs256(signing_input: str, secret: str = SECRET) -> str:
    return b64url(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())


def hand_built(header: dict[str, Any], payload: dict[str, Any], signature: str) -> str:
    return f"{b64url_json(header)}.{b64url_json(payload)}.{signature}"


def payload_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def valid_payload(**overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    payload: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 600,
        "iss": SETTINGS.issuer,
        "aud": SETTINGS.audience,
    }
    payload.update(overrides)
    return payload


def signed(payload: dict[str, Any]) -> str:
    return jwt.encode(payload, SECRET, algorithm="HS256")


def issue(settings: JwtSettings = SETTINGS, now: datetime | None = None) -> IssuedToken:
    return TokenIssuer(settings).issue(uuid.uuid4(), uuid.uuid4(), now=now)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def keys(isolated_infra: IsolatedInfra, redis: Redis) -> AsyncIterator[KeySpace]:
    prefix = f"{isolated_infra.redis_prefix}kit-tokens-{uuid.uuid4().hex[:8]}:"
    yield KeySpace(prefix)
    stale = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if stale:
        await redis.unlink(*stale)


@pytest.fixture
async def revocations(redis: Redis, keys: KeySpace) -> RevocationList:
    revocations = RevocationList(redis, keys)
    await revocations.rebuild([], [])  # whole, as auth keeps them
    return revocations


@pytest.fixture
def verifier(revocations: RevocationList) -> TokenVerifier:
    return TokenVerifier(SETTINGS, revocations)


# --- issue and verify ----------------------------------------------------------------------


async def test_issued_token_verifies_and_claims_round_trip(verifier: TokenVerifier) -> None:
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    now = datetime(2030, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    issued = TokenIssuer(SETTINGS).issue(user_id, session_id, now=now)
    assert issued.claims.user_id == user_id
    assert issued.claims.session_id == session_id
    assert issued.claims.issued_at == now.replace(microsecond=0)
    assert issued.claims.expires_at == now.replace(microsecond=0) + timedelta(seconds=900)

    with pytest.raises(InvalidTokenError):  # issued in 2030: not yet valid
        await verifier.verify(issued.token)

    fresh = TokenIssuer(SETTINGS).issue(user_id, session_id)
    assert await verifier.verify(fresh.token) == fresh.claims


def test_issued_token_is_hs256_with_every_claim() -> None:
    issued = issue()
    header = jwt.get_unverified_header(issued.token)
    assert header["alg"] == "HS256"
    payload = payload_of(issued.token)
    assert set(payload) == {"sub", "sid", "jti", "iat", "exp", "iss", "aud"}
    assert payload["sub"] == str(issued.claims.user_id)
    assert payload["jti"] == str(issued.claims.token_id)
    assert payload["exp"] - payload["iat"] == 900


def test_each_issued_token_has_its_own_id() -> None:
    issuer = TokenIssuer(SETTINGS)
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    first = issuer.issue(user_id, session_id)
    second = issuer.issue(user_id, session_id)
    assert first.claims.token_id != second.claims.token_id


def test_decode_needs_no_io(verifier: TokenVerifier) -> None:
    issued = issue()
    assert verifier.decode(issued.token) == issued.claims


# --- attacks and malformed tokens ----------------------------------------------------------


def alg_none_token() -> str:
    return jwt.encode(valid_payload(), None, algorithm="none")  # type: ignore[arg-type]


def alg_none_hand_built() -> str:
    return hand_built({"alg": "none", "typ": "JWT"}, valid_payload(), "")


def alg_none_capitalised_with_hmac() -> str:
    header, payload = b64url_json({"alg": "None", "typ": "JWT"}), b64url_json(valid_payload())
    return f"{header}.{payload}.{hs256(f'{header}.{payload}')}"


def hs512_token() -> str:
    return jwt.encode(valid_payload(), SECRET, algorithm="HS512")


def rs256_bogus_signature() -> str:
    return hand_built({"alg": "RS256", "typ": "JWT"}, valid_payload(), b64url(b"\x01" * 256))


def rs256_header_hmac_signed() -> str:
    """Key confusion: claims RS256 but is HMAC-signed with the shared secret."""
    header, payload = b64url_json({"alg": "RS256", "typ": "JWT"}), b64url_json(valid_payload())
    return f"{header}.{payload}.{hs256(f'{header}.{payload}')}"


def wrong_secret() -> str:
    return jwt.encode(valid_payload(), "another-secret-of-sufficient-length!!", algorithm="HS256")


def expired() -> str:
    return issue(now=datetime.now(UTC) - timedelta(seconds=901)).token


def wrong_audience() -> str:
    return issue(JwtSettings(SECRET, 900, SETTINGS.issuer, "admin-api")).token


def wrong_issuer() -> str:
    return issue(JwtSettings(SECRET, 900, "someone-else", SETTINGS.audience)).token


def tampered_sub() -> str:
    header, payload, signature = issue().token.split(".")
    claims = payload_of(f"{header}.{payload}.{signature}")
    claims["sub"] = str(uuid.uuid4())
    return f"{header}.{b64url_json(claims)}.{signature}"


def tampered_signature() -> str:
    token = issue().token
    last = "A" if token[-2] != "A" else "B"
    return token[:-2] + last + token[-1]


def missing(claim: str) -> str:
    payload = valid_payload()
    del payload[claim]
    return signed(payload)


ATTACKS = {
    "alg none (pyjwt)": alg_none_token,
    "alg none (by hand)": alg_none_hand_built,
    "alg None with hmac": alg_none_capitalised_with_hmac,
    "HS512": hs512_token,
    "RS256 bogus signature": rs256_bogus_signature,
    "RS256 header, HMAC signed": rs256_header_hmac_signed,
    "wrong secret": wrong_secret,
    "expired": expired,
    "wrong aud": wrong_audience,
    "wrong iss": wrong_issuer,
    "tampered sub": tampered_sub,
    "tampered signature": tampered_signature,
    "missing sid": lambda: missing("sid"),
    "missing jti": lambda: missing("jti"),
    "missing sub": lambda: missing("sub"),
    "missing exp": lambda: missing("exp"),
    "missing aud": lambda: missing("aud"),
    "non-uuid sub": lambda: signed(valid_payload(sub="alice")),
    "non-uuid sid": lambda: signed(valid_payload(sid="session-1")),
    "non-string sid": lambda: signed(valid_payload(sid=12345)),
    "exp beyond datetime": lambda: signed(valid_payload(exp=10**20)),
    "issued in the future": lambda: signed(
        valid_payload(iat=int(datetime.now(UTC).timestamp()) + 3600)
    ),
    "garbage": lambda: "not-a-jwt",
    "three junk segments": lambda: "a.b.c",
    "empty": lambda: "",
}


@pytest.mark.parametrize("build", ATTACKS.values(), ids=ATTACKS.keys())
async def test_attack_is_refused(verifier: TokenVerifier, build: Any) -> None:
    token: str = build()
    with pytest.raises(InvalidTokenError):
        await verifier.verify(token)


def test_hand_built_hs256_is_accepted_so_the_attack_builders_are_sound(
    verifier: TokenVerifier,
) -> None:
    payload = valid_payload()
    header, body = b64url_json({"alg": "HS256", "typ": "JWT"}), b64url_json(payload)
    claims = verifier.decode(f"{header}.{body}.{hs256(f'{header}.{body}')}")
    assert str(claims.user_id) == payload["sub"]


# --- revocation against real Redis ---------------------------------------------------------


async def test_revoked_session_stops_every_token_of_that_session(
    verifier: TokenVerifier, revocations: RevocationList, redis: Redis, keys: KeySpace
) -> None:
    issuer = TokenIssuer(SETTINGS)
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    first = issuer.issue(user_id, session_id)
    second = issuer.issue(user_id, session_id)
    other_session = issuer.issue(user_id, uuid.uuid4())

    await revocations.revoke_session(session_id, ttl_seconds=900)

    for token in (first.token, second.token):
        with pytest.raises(InvalidTokenError, match="revoked"):
            await verifier.verify(token)
    assert await verifier.verify(other_session.token) == other_session.claims
    ttl = await redis.ttl(keys.key("auth", "revoked", "sid", str(session_id)))
    assert 0 < ttl <= 900


async def test_revoked_token_stops_only_that_token(
    verifier: TokenVerifier, revocations: RevocationList, redis: Redis, keys: KeySpace
) -> None:
    issuer = TokenIssuer(SETTINGS)
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    revoked = issuer.issue(user_id, session_id)
    sibling = issuer.issue(user_id, session_id)

    await revocations.revoke_token(revoked.claims.token_id, ttl_seconds=300)

    with pytest.raises(InvalidTokenError, match="revoked"):
        await verifier.verify(revoked.token)
    assert await verifier.verify(sibling.token) == sibling.claims
    assert await revocations.is_revoked(revoked.claims)
    assert not await revocations.is_revoked(sibling.claims)
    ttl = await redis.ttl(keys.key("auth", "revoked", "jti", str(revoked.claims.token_id)))
    assert 0 < ttl <= 300


async def test_a_revoked_user_stops_every_token_of_theirs_and_only_theirs(
    verifier: TokenVerifier, revocations: RevocationList, redis: Redis, keys: KeySpace
) -> None:
    issuer = TokenIssuer(SETTINGS)
    deleted, other = uuid.uuid4(), uuid.uuid4()
    tokens = [issuer.issue(deleted, uuid.uuid4()) for _ in range(2)]
    bystander = issuer.issue(other, uuid.uuid4())

    await revocations.revoke_user(deleted, ttl_seconds=600)

    for issued in tokens:
        with pytest.raises(InvalidTokenError, match="revoked"):
            await verifier.verify(issued.token)
    assert await verifier.verify(bystander.token) == bystander.claims
    ttl = await redis.ttl(keys.key("auth", "revoked", "sub", str(deleted)))
    assert 0 < ttl <= 600


async def test_revocation_with_no_time_left_still_expires(
    revocations: RevocationList, redis: Redis, keys: KeySpace
) -> None:
    session_id = uuid.uuid4()
    await revocations.revoke_session(session_id, ttl_seconds=0)
    ttl = await redis.ttl(keys.key("auth", "revoked", "sid", str(session_id)))
    assert ttl == 1


async def test_revocation_keys_live_under_the_prefix(
    revocations: RevocationList, redis: Redis, keys: KeySpace
) -> None:
    claims: AccessClaims = issue().claims
    await revocations.revoke_token(claims.token_id, ttl_seconds=60)
    found = sorted([key async for key in redis.scan_iter(match=keys.key("*"))])
    assert found == [
        keys.key("auth", "revoked", "complete").encode(),
        keys.key("auth", "revoked", "jti", str(claims.token_id)).encode(),
    ]


async def test_without_the_marker_no_token_is_accepted_until_the_keys_are_rebuilt(
    verifier: TokenVerifier, revocations: RevocationList, redis: Redis, keys: KeySpace
) -> None:
    issued, revoked, deleted = issue(), issue(), issue()
    await redis.delete(keys.key("auth", "revoked", "complete"))  # as a flush would

    for token in (issued, revoked, deleted):
        with pytest.raises(RevocationsUnknownError):
            await verifier.verify(token.token)

    await revocations.rebuild([(revoked.claims.session_id, 120)], [(deleted.claims.user_id, 0)])
    assert await verifier.verify(issued.token) == issued.claims
    for token in (revoked, deleted):
        with pytest.raises(InvalidTokenError, match="revoked"):
            await verifier.verify(token.token)
    ttl = await redis.ttl(keys.key("auth", "revoked", "sid", str(revoked.claims.session_id)))
    assert 0 < ttl <= 120
    assert await redis.ttl(keys.key("auth", "revoked", "sub", str(deleted.claims.user_id))) == 1


# --- bearer header parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER  abc ", "abc"),
        ("Bearer ", None),
        ("Bearer", None),
        ("Basic dXNlcjpwYXNz", None),
        ("abc.def.ghi", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


# --- authenticate through an app -----------------------------------------------------------


async def whoami(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    return json_response({"userId": str(claims.user_id), "sessionId": str(claims.session_id)})


@pytest.fixture
async def client(verifier: TokenVerifier) -> AsyncIterator[Client]:
    app = create_service_app("svc", HTTP)
    app[TOKEN_VERIFIER] = verifier
    app.router.add_get("/me", whoami)
    async with TestClient(TestServer(app, host="127.0.0.1")) as started:
        yield started


async def unauthorized(response: Any) -> dict[str, Any]:
    assert response.status == 401
    assert response.content_type == PROBLEM_CONTENT_TYPE
    body: dict[str, Any] = msgspec.json.decode(await response.read())
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert body["instance"] == "/me"
    return body


async def test_no_authorization_header_is_401_with_challenge(client: Client) -> None:
    response = await client.get("/me")
    await unauthorized(response)
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_other_scheme_is_401_with_challenge(client: Client) -> None:
    response = await client.get("/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    await unauthorized(response)
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("build", [wrong_secret, expired, alg_none_token, tampered_sub])
async def test_bad_token_is_401_invalid_token(client: Client, build: Any) -> None:
    response = await client.get("/me", headers={"Authorization": f"Bearer {build()}"})
    body = await unauthorized(response)
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert body["detail"].startswith("Invalid token")
    assert SECRET not in body["detail"]


async def test_good_token_reaches_the_handler_with_the_user(client: Client) -> None:
    issued = issue()
    response = await client.get("/me", headers={"Authorization": f"Bearer {issued.token}"})
    assert response.status == 200
    assert await response.json() == {
        "userId": str(issued.claims.user_id),
        "sessionId": str(issued.claims.session_id),
    }


async def test_revoked_session_is_401(client: Client, revocations: RevocationList) -> None:
    issued = issue()
    await revocations.revoke_session(issued.claims.session_id, ttl_seconds=60)
    response = await client.get("/me", headers={"Authorization": f"Bearer {issued.token}"})
    body = await unauthorized(response)
    assert "revoked" in body["detail"]
