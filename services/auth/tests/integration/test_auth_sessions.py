"""Sessions: refresh rotation and reuse detection, logout revocation (seen by every service
through Redis), ``session.revoked`` through the outbox, forged and broken JWTs, and a 401 problem
from every protected route."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
import pytest
import redis.asyncio as redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from auth.routes import ENDPOINTS
from contracts.envelope import decode_envelope
from contracts.names import SESSION_REVOKED
from devstack.broker_probe import collect, collect_settled
from devstack.isolation import free_port
from servicekit.http_app import create_service_app, json_response
from servicekit.openapi import Endpoint, fill_path, openapi_path
from servicekit.redis_store import create_redis, redis_resource
from servicekit.resources import REDIS, token_verifier_resource
from servicekit.settings import Environment, read_platform
from servicekit.tokens import authenticate

if TYPE_CHECKING:
    from devstack.broker_probe import Probe
    from services.auth.tests.integration.auth_rig import Account, Api, AuthServer

pytestmark = pytest.mark.integration

Client = TestClient[web.Request, web.Application]
PEER_ROUTE = "/api/chat/whoami"


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


@pytest.fixture(scope="module")
async def peer(auth_server: AuthServer) -> AsyncIterator[Client]:
    """Another service of the fleet, wired as each of them is: its own platform settings from
    the fleet's environment, the kit's token verifier on the shared Redis, ``authenticate`` on
    a route."""
    env = auth_server.plan.service_env("chat", free_port())
    platform = read_platform(Environment(env), "chat", 8002)
    app = create_service_app(platform.service, platform.http)

    async def whoami(request: web.Request) -> web.Response:
        claims = await authenticate(request)
        return json_response({"userId": str(claims.user_id), "sessionId": str(claims.session_id)})

    app.cleanup_ctx.extend(
        [redis_resource(REDIS, platform.redis), token_verifier_resource(platform)]
    )
    app.router.add_get(PEER_ROUTE, whoami)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture(scope="module")
async def store(auth_server: AuthServer) -> AsyncIterator[redis.Redis]:
    """A Redis client of the test's own, to read what auth wrote."""
    client = create_redis(auth_server.settings.platform.redis)
    yield client
    await client.aclose()


async def peer_status(peer: Client, token: str) -> tuple[int, dict[str, Any]]:
    async with peer.get(PEER_ROUTE, headers={"Authorization": f"Bearer {token}"}) as response:
        if response.status == 401:
            assert response.content_type == "application/problem+json"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body: dict[str, Any] = await response.json(content_type=None)
        return response.status, body


async def refresh(api: Api, refresh_token: str) -> Any:
    return await api.call("POST", "/api/auth/refresh", json={"refreshToken": refresh_token})


async def me_status(api: Api, token: str) -> int:
    return (await api.call("GET", "/api/auth/me", token=token)).status


def revoked_key(auth_server: AuthServer, session_id: str) -> str:
    return f"{auth_server.redis_prefix}auth:revoked:sid:{session_id}"


# --- refresh --------------------------------------------------------------------------------


async def test_refresh_rotates_the_refresh_token_within_the_session(
    api: Api, auth_server: AuthServer
) -> None:
    account = await api.register()
    result = (await refresh(api, account.refresh_token)).ok()

    assert set(result) == {"user", "token", "expiresAt", "refreshToken"}
    assert result["user"] == account.body["user"]
    assert result["refreshToken"] != account.refresh_token
    assert result["token"] != account.token
    assert claims_of(result["token"])["sid"] == account.session_id
    assert claims_of(result["token"])["jti"] != claims_of(account.token)["jti"]
    assert await me_status(api, result["token"]) == 200

    second = (await refresh(api, result["refreshToken"])).ok()
    assert second["refreshToken"] not in {account.refresh_token, result["refreshToken"]}
    rotated = await auth_server.fetchval(
        "SELECT count(*) FILTER (WHERE rotated_at IS NOT NULL) || '/' || count(*)"
        " FROM refresh_tokens WHERE session_id = $1",
        uuid.UUID(account.session_id),
    )
    assert rotated == "2/3"  # only the newest token of the family is current


async def test_a_rotated_refresh_token_presented_again_revokes_the_whole_family(
    api: Api,
    auth_server: AuthServer,
    peer: Client,
    probe: Probe,
    store: redis.Redis,
) -> None:
    account = await api.register()
    other_session = await api.login(account)
    queue = await probe(SESSION_REVOKED)

    stolen = account.refresh_token
    current = (await refresh(api, stolen)).ok()
    reused = await refresh(api, stolen)
    assert "reuse" in reused.problem(401)["detail"]

    # The legitimate holder's newer tokens stopped working too: refresh and access alike.
    (await refresh(api, current["refreshToken"])).problem(401)
    assert await me_status(api, current["token"]) == 401
    assert await me_status(api, account.token) == 401
    assert (await peer_status(peer, current["token"]))[0] == 401
    assert await store.exists(revoked_key(auth_server, account.session_id)) == 1
    reason = await auth_server.fetchval(
        "SELECT revoked_reason FROM sessions WHERE id = $1", uuid.UUID(account.session_id)
    )
    assert reason == "refresh_reuse"

    # Only that session: the account's other session is untouched.
    assert await me_status(api, other_session.token) == 200
    (await refresh(api, other_session.refresh_token)).ok()

    [message] = await collect(queue, 1)
    assert await collect_settled(queue, quiet=0.5) == []
    event = decode_envelope(message.body)
    assert event.type == SESSION_REVOKED
    assert str(event.data.session_id) == account.session_id
    assert str(event.data.user_id) == account.id
    assert event.data.reason == "refresh_reuse"


async def test_two_refreshes_with_one_token_at_once_let_exactly_one_through(api: Api) -> None:
    account = await api.register()
    replies = await asyncio.gather(*(refresh(api, account.refresh_token) for _ in range(2)))
    assert sorted(reply.status for reply in replies) == [200, 401]
    winner = next(reply.json() for reply in replies if reply.status == 200)
    # The second one was a reuse of the rotated token: the family is gone, the winner's too.
    (await refresh(api, winner["refreshToken"])).problem(401)


async def test_refresh_refuses_unknown_and_expired_tokens(
    api: Api, auth_server: AuthServer
) -> None:
    unknown = await refresh(api, secrets.token_urlsafe(32))
    assert unknown.problem(401)["detail"] == "The refresh token is invalid, expired or revoked"

    account = await api.register()
    await auth_server.execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE session_id = $1",
        uuid.UUID(account.session_id),
    )
    expired = await refresh(api, account.refresh_token)
    assert expired.problem(401)["detail"] == "The refresh token is invalid, expired or revoked"

    account = await api.register()
    await auth_server.execute(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(account.session_id),
    )
    (await refresh(api, account.refresh_token)).problem(401)


@pytest.mark.parametrize(
    "body",
    [{}, {"refreshToken": ""}, {"refreshToken": "x" * 257}, {"refreshToken": 42}],
    ids=["missing", "empty", "too-long", "number"],
)
async def test_refresh_refuses_malformed_bodies(api: Api, body: dict[str, Any]) -> None:
    reply = await api.call("POST", "/api/auth/refresh", json=body)
    assert reply.field_errors() == {"refreshToken"}


# --- logout ---------------------------------------------------------------------------------


async def test_logout_revokes_the_session_everywhere_and_publishes_session_revoked(
    api: Api, auth_server: AuthServer, probe: Probe, store: redis.Redis
) -> None:
    account = await api.register()
    other_session = await api.login(account)
    queue = await probe(SESSION_REVOKED)

    reply = await api.call("POST", "/api/auth/logout", token=account.token)
    assert reply.status == 204
    assert reply.body == b""

    assert (await api.call("GET", "/api/auth/me", token=account.token)).problem(401)
    (await refresh(api, account.refresh_token)).problem(401)
    (await api.call("POST", "/api/auth/logout", token=account.token)).problem(401)

    key = revoked_key(auth_server, account.session_id)
    assert await store.exists(key) == 1
    ttl = await store.ttl(key)
    assert 0 < ttl <= auth_server.jwt.expiration_seconds  # lives as long as a token could
    revoked = await auth_server.fetchval(
        "SELECT revoked_reason FROM sessions WHERE id = $1 AND revoked_at IS NOT NULL",
        uuid.UUID(account.session_id),
    )
    assert revoked == "logout"

    assert await me_status(api, other_session.token) == 200  # another device stays signed in

    [message] = await collect(queue, 1)
    assert await collect_settled(queue, quiet=0.5) == []
    event = decode_envelope(message.body)
    assert event.producer == "auth"
    assert str(event.data.session_id) == account.session_id
    assert str(event.data.user_id) == account.id
    assert event.data.reason == "logout"
    assert event.data.expires_at > event.data.revoked_at
    assert await auth_server.fetchval(
        "SELECT published_at IS NOT NULL FROM outbox WHERE event_id = $1", event.id
    )


@pytest.mark.parametrize("how", ["logout", "refresh-reuse"])
async def test_a_revoked_token_gets_401_on_every_service(api: Api, peer: Client, how: str) -> None:
    account = await api.register()
    status, body = await peer_status(peer, account.token)
    assert (status, body) == (200, {"userId": account.id, "sessionId": account.session_id})

    if how == "logout":
        assert (await api.call("POST", "/api/auth/logout", token=account.token)).status == 204
    else:
        (await refresh(api, account.refresh_token)).ok()
        (await refresh(api, account.refresh_token)).problem(401)

    status, body = await peer_status(peer, account.token)
    assert status == 401
    assert "revoked" in body["detail"]
    for endpoint in ENDPOINTS:
        if endpoint.authenticated:
            path = fill_path(endpoint.path, user_id=account.id, session_id=account.session_id)
            reply = await api.call(endpoint.method, path, token=account.token, json={})
            assert "revoked" in reply.problem(401)["detail"], (endpoint.method, path)


# --- every protected route ------------------------------------------------------------------


def test_the_protected_routes_are_the_ones_expected() -> None:
    protected = {(e.method, openapi_path(e.path)) for e in ENDPOINTS if e.authenticated}
    assert protected == {
        ("POST", "/api/auth/logout"),
        ("POST", "/api/auth/password"),
        ("GET", "/api/auth/sessions"),
        ("DELETE", "/api/auth/sessions/{session_id}"),
        ("GET", "/api/auth/me"),
        ("PATCH", "/api/users/me"),
        ("DELETE", "/api/users/me"),
        ("PATCH", "/api/users/me/profile"),
        ("GET", "/api/users/{user_id}"),
        ("GET", "/api/users"),
    }


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer not.a.jwt"],
    ids=["absent", "empty", "bearer-only", "bearer-blank", "basic", "other-scheme", "garbage"],
)
@pytest.mark.parametrize(
    "endpoint",
    [e for e in ENDPOINTS if e.authenticated],
    ids=lambda e: f"{e.method} {openapi_path(e.path)}",
)
async def test_every_protected_route_answers_401_without_a_valid_token(
    api: Api, endpoint: Endpoint, authorization: str | None
) -> None:
    path = fill_path(endpoint.path, user_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()))
    headers = {} if authorization is None else {"Authorization": authorization}
    params = {"q": "someone"} if endpoint.path == "/api/users" else None
    reply = await api.call(endpoint.method, path, headers=headers, json={}, params=params)
    problem = reply.problem(401)
    assert problem["instance"] == path
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


# --- forged and broken tokens ---------------------------------------------------------------


def forgeries(auth_server: AuthServer, account: Account) -> dict[str, str]:
    """Tokens for ``account``, each wrong in exactly one way (``control`` is right)."""
    settings = auth_server.jwt
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": account.id,
        "sid": account.session_id,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 600,
        "iss": settings.issuer,
        "aud": settings.audience,
    }

    def signed(payload: dict[str, Any], key: str = settings.secret, alg: str = "HS256") -> str:
        return jwt.encode(payload, key, algorithm=alg)

    def unsigned(alg: str, signature: str = "") -> str:
        return f"{b64url_json({'alg': alg, 'typ': 'JWT'})}.{b64url_json(claims)}.{signature}"

    def without(name: str) -> str:
        return signed({key: value for key, value in claims.items() if key != name})

    def tampered(**changes: object) -> str:
        header, _, signature = signed(claims).split(".")
        return f"{header}.{b64url_json({**claims, **changes})}.{signature}"

    valid = signed(claims)
    return {
        "control": valid,
        "alg-none": unsigned("none"),
        "alg-None": unsigned("None"),
        "alg-NONE": unsigned("NONE"),
        "alg-none-with-valid-signature": unsigned("none", valid.rsplit(".", 1)[1]),
        "alg-HS512": signed(claims, alg="HS512"),
        "alg-HS384": signed(claims, alg="HS384"),
        "wrong-secret": signed(claims, key=settings.secret + "-but-not-quite"),
        "expired": signed({**claims, "iat": now - 1200, "exp": now - 60}),
        "issued-in-the-future": signed({**claims, "iat": now + 3600, "exp": now + 7200}),
        "not-before-in-the-future": signed({**claims, "nbf": now + 3600}),
        "wrong-audience": signed({**claims, "aud": "some-other-api"}),
        "wrong-issuer": signed({**claims, "iss": "someone-else"}),
        "no-audience": without("aud"),
        "no-issuer": without("iss"),
        "no-expiry": without("exp"),
        "no-session": without("sid"),
        "no-token-id": without("jti"),
        "subject-not-a-uuid": signed({**claims, "sub": "admin"}),
        "session-not-a-string": signed({**claims, "sid": 12345}),
        "tampered-payload": tampered(sub=str(uuid.uuid4())),
        "tampered-expiry": tampered(exp=now + 10**8),
        "truncated-signature": valid[:-4],
    }


ATTACKS = [
    "alg-none",
    "alg-None",
    "alg-NONE",
    "alg-none-with-valid-signature",
    "alg-HS512",
    "alg-HS384",
    "wrong-secret",
    "expired",
    "issued-in-the-future",
    "not-before-in-the-future",
    "wrong-audience",
    "wrong-issuer",
    "no-audience",
    "no-issuer",
    "no-expiry",
    "no-session",
    "no-token-id",
    "subject-not-a-uuid",
    "session-not-a-string",
    "tampered-payload",
    "tampered-expiry",
    "truncated-signature",
]


async def test_a_token_forged_with_the_right_secret_is_accepted(
    api: Api, auth_server: AuthServer, peer: Client
) -> None:
    """The control: each forgery differs from a token auth would issue only where it says."""
    account = await api.register()
    token = forgeries(auth_server, account)["control"]
    me = (await api.call("GET", "/api/auth/me", token=token)).ok()
    assert me["user"]["id"] == account.id
    assert (await peer_status(peer, token))[0] == 200


@pytest.mark.parametrize("attack", ATTACKS)
async def test_forged_and_broken_tokens_get_401(
    api: Api, auth_server: AuthServer, peer: Client, attack: str
) -> None:
    account = await api.register()
    token = forgeries(auth_server, account)[attack]
    reply = await api.call("GET", "/api/auth/me", token=token)
    assert reply.problem(401)["detail"].startswith("Invalid token")
    assert reply.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert (await peer_status(peer, token))[0] == 401
    assert await me_status(api, account.token) == 200  # the real token still works


async def test_a_valid_token_of_an_account_that_no_longer_exists_gets_401(
    api: Api, auth_server: AuthServer
) -> None:
    account = await api.register()
    await auth_server.execute("DELETE FROM users WHERE id = $1", uuid.UUID(account.id))
    reply = await api.call("GET", "/api/auth/me", token=account.token)
    assert reply.problem(401)["detail"] == "The account no longer exists"


async def test_deleting_an_account_forgets_deletions_older_than_a_token_lifetime(
    api: Api, auth_server: AuthServer
) -> None:
    """``deleted_accounts`` rebuilds revocations after a Redis loss, and only for tokens that can
    still be alive: a row is kept one ``JWT_EXPIRATION``, then the next deletion prunes it."""
    lifetime = timedelta(seconds=auth_server.jwt.expiration_seconds)
    now = datetime.now(UTC)
    expired, alive = uuid.uuid4(), uuid.uuid4()
    for user_id, deleted_at in [
        (expired, now - lifetime - timedelta(seconds=5)),
        (alive, now - lifetime + timedelta(minutes=5)),
    ]:
        await auth_server.execute(
            "INSERT INTO deleted_accounts (user_id, deleted_at) VALUES ($1, $2)",
            user_id,
            deleted_at,
        )
    account = await api.register()

    reply = await api.call(
        "DELETE", "/api/users/me", token=account.token, json={"password": account.password}
    )
    assert reply.status == 204, reply.body

    kept = await auth_server.fetchval(
        "SELECT array_agg(user_id) FROM deleted_accounts WHERE user_id = ANY($1::uuid[])",
        [expired, alive, uuid.UUID(account.id)],
    )
    assert set(kept) == {alive, uuid.UUID(account.id)}
    assert await me_status(api, account.token) == 401
