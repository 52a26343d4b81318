"""Registration and login against the real stores: the answers, every refusal (409, 422, 401,
429), the rate limits, and ``user.registered`` on the exchange exactly once per account."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jwt
import pytest

from contracts.envelope import decode_envelope
from contracts.names import USER_REGISTERED
from devstack.broker_probe import collect, collect_settled
from services.auth.tests.integration.auth_rig import PASSWORD

if TYPE_CHECKING:
    from devstack.broker_probe import Probe
    from services.auth.tests.integration.auth_rig import Api, AuthServer

pytestmark = pytest.mark.integration

RESULT_KEYS = {"user", "token", "expiresAt", "refreshToken"}
USER_KEYS = {"id", "email", "username", "displayName", "createdAt", "updatedAt", "profile"}


def registration(api: Api, **overrides: Any) -> dict[str, Any]:
    email, username = api.identity()
    return {"email": email, "username": username, "password": PASSWORD, **overrides}


def retry_after(reply_headers: Any, window_seconds: int) -> int:
    seconds = int(reply_headers["Retry-After"])
    assert 1 <= seconds <= window_seconds
    return seconds


# --- register -------------------------------------------------------------------------------


async def test_register_answers_201_with_the_user_an_access_token_and_a_refresh_token(
    api: Api, auth_server: AuthServer
) -> None:
    body = registration(api, displayName="Ada Lovelace")
    result = (await api.call("POST", "/api/auth/register", json=body)).ok(201)

    assert set(result) == RESULT_KEYS
    user = result["user"]
    assert set(user) == USER_KEYS
    assert user["email"] == body["email"]
    assert user["username"] == body["username"]
    assert user["displayName"] == "Ada Lovelace"
    assert user["profile"] == {}
    assert uuid.UUID(user["id"])
    assert user["createdAt"] == user["updatedAt"]
    assert len(result["refreshToken"]) >= 32

    settings = auth_server.jwt
    claims = jwt.decode(
        result["token"],
        settings.secret,
        algorithms=["HS256"],
        audience=settings.audience,
        issuer=settings.issuer,
    )
    assert claims["sub"] == user["id"]
    expires_at = datetime.fromisoformat(result["expiresAt"])
    assert expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    assert claims["exp"] - claims["iat"] == settings.expiration_seconds

    me = (await api.call("GET", "/api/auth/me", token=result["token"])).ok()
    assert me["user"] == user
    assert await auth_server.fetchval(
        "SELECT password_hash LIKE '$2b$04$%' FROM credentials WHERE user_id = $1",
        uuid.UUID(user["id"]),
    )


async def test_display_name_defaults_to_the_username(api: Api) -> None:
    account = await api.register()
    assert account.body["user"]["displayName"] == account.username


async def test_register_refuses_an_email_taken_in_any_case(api: Api) -> None:
    taken = await api.register()
    body = registration(api, email=taken.email.upper())
    reply = await api.call("POST", "/api/auth/register", json=body)
    assert reply.field_errors(409) == {"email"}
    assert "email" in reply.problem(409)["detail"]


async def test_register_refuses_a_username_taken_in_any_case(api: Api) -> None:
    taken = await api.register()
    body = registration(api, username=taken.username.upper())
    reply = await api.call("POST", "/api/auth/register", json=body)
    assert reply.field_errors(409) == {"username"}
    assert "username" in reply.problem(409)["detail"]


async def test_register_names_both_fields_when_both_are_taken(api: Api) -> None:
    first, second = await api.register(), await api.register()
    body = registration(api, email=first.email, username=second.username.title())
    reply = await api.call("POST", "/api/auth/register", json=body)
    assert reply.field_errors(409) == {"email", "username"}


async def test_concurrent_registrations_of_one_email_create_one_account(
    api: Api, auth_server: AuthServer
) -> None:
    email, _ = api.identity()
    bodies = [registration(api, email=email) for _ in range(4)]
    replies = await asyncio.gather(
        *(
            api.call("POST", "/api/auth/register", json=body, ip=f"10.9.0.{i}")
            for i, body in enumerate(bodies, 1)
        )
    )
    assert sorted(reply.status for reply in replies) == [201, 409, 409, 409]
    for reply in replies:
        if reply.status == 409:
            assert reply.field_errors(409) == {"email"}
    assert await auth_server.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 1


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plainaddress",
        "no-domain-dot@example",
        "two@@example.com",
        "spa ce@example.com",
        "@example.com",
        "trailing-newline@example.com\n",
        "nul\x00byte@example.com",
        f"{'a' * 65}@example.com",
        f"a@{'b' * 250}.com",
    ],
    ids=[
        "empty",
        "no-at",
        "no-dot",
        "two-ats",
        "space",
        "no-local-part",
        "trailing-newline",
        "nul-byte",
        "local-part-too-long",
        "longer-than-254",
    ],
)
async def test_register_refuses_an_invalid_email(api: Api, email: str) -> None:
    reply = await api.call("POST", "/api/auth/register", json=registration(api, email=email))
    assert reply.field_errors() == {"email"}


@pytest.mark.parametrize(
    "username",
    ["ab", "a" * 33, "has space", "naïve", "slash/y", "at@sign", "", "newline\n", "tab\tx"],
    ids=[
        "2-chars",
        "33-chars",
        "space",
        "non-ascii",
        "slash",
        "at-sign",
        "empty",
        "trailing-newline",
        "tab",
    ],
)
async def test_register_refuses_an_invalid_username(api: Api, username: str) -> None:
    body = registration(api, username=username, displayName="Valid Name")
    reply = await api.call("POST", "/api/auth/register", json=body)
    assert reply.field_errors() == {"username"}


@pytest.mark.parametrize(("length", "head"), [(3, ""), (32, ""), (16, "A_b.c-D9")])
async def test_register_accepts_usernames_at_the_edges(api: Api, length: int, head: str) -> None:
    username = (head + uuid.uuid4().hex)[:length]
    account = await api.register(username=username)
    assert account.body["user"]["username"] == username


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("seven77", False),
        ("eight888", True),
        ("x" * 72, True),
        ("x" * 73, False),
        ("é" * 30, True),  # 60 bytes in UTF-8
        ("é" * 36, True),  # 72 bytes
        ("é" * 37, False),  # 74 bytes: bcrypt would silently ignore the tail
        ("🔑" * 18, True),  # 72 bytes in 18 characters
        ("🔑" * 19, False),  # 76 bytes
    ],
    ids=lambda value: (
        f"{len(value)}-chars-{len(value.encode())}-bytes"
        if isinstance(value, str)
        else ("accepted" if value else "refused")
    ),
)
async def test_password_is_8_characters_and_at_most_72_bytes(
    api: Api, password: str, accepted: bool
) -> None:
    body = registration(api, password=password)
    reply = await api.call("POST", "/api/auth/register", json=body)
    if not accepted:
        assert reply.field_errors() == {"password"}
        return
    reply.ok(201)
    # What was stored is the whole password: it signs in, and a prefix of it does not.
    login = {"username": body["username"], "password": password}
    (await api.call("POST", "/api/auth/login", json=login)).ok()
    head = password.encode()[:-4].decode(errors="ignore")
    wrong = {"username": body["username"], "password": head}
    (await api.call("POST", "/api/auth/login", json=wrong)).problem(401)


async def test_register_reports_every_invalid_field_at_once(api: Api) -> None:
    body = {"email": "nope", "username": "x", "password": "short", "displayName": "   "}
    reply = await api.call("POST", "/api/auth/register", json=body)
    problem = reply.problem(422)
    assert {error["field"] for error in problem["errors"]} == {
        "email",
        "username",
        "password",
        "displayName",
    }
    assert all(error["message"] for error in problem["errors"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"displayName": "x" * 65}, "displayName"),
        ({"displayName": "nul\x00byte"}, "displayName"),
        ({"email": None}, "email"),
        ({"password": 12345678}, "password"),
        ({"admin": True}, "admin"),
    ],
    ids=["display-name-too-long", "display-name-nul", "email-null", "password-number", "unknown"],
)
async def test_register_refuses_malformed_fields(
    api: Api, change: dict[str, Any], field: str
) -> None:
    body = registration(api, **change)
    reply = await api.call("POST", "/api/auth/register", json=body)
    assert reply.field_errors() == {field}


async def test_register_names_a_missing_field(api: Api) -> None:
    body = registration(api)
    del body["password"]
    reply = await api.call("POST", "/api/auth/register", json=body)
    assert reply.field_errors() == {"password"}


async def test_register_refuses_bodies_that_are_not_json(api: Api) -> None:
    malformed = await api.call(
        "POST",
        "/api/auth/register",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    malformed.problem(400)
    wrong_type = await api.call(
        "POST", "/api/auth/register", data=b"email=a", headers={"Content-Type": "text/plain"}
    )
    wrong_type.problem(415)
    too_large = await api.call(
        "POST",
        "/api/auth/register",
        data=b'{"email": "' + b"a" * (1024 * 1024 + 1) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    too_large.problem(413)


# --- login ----------------------------------------------------------------------------------


async def test_login_by_email_or_username_in_any_case(api: Api) -> None:
    account = await api.register(display_name="Grace")
    for credentials in (
        {"email": account.email, "password": PASSWORD},
        {"email": account.email.upper(), "password": PASSWORD},
        {"username": account.username, "password": PASSWORD},
        {"username": account.username.upper(), "password": PASSWORD},
    ):
        result = (await api.call("POST", "/api/auth/login", json=credentials)).ok()
        assert set(result) == RESULT_KEYS
        assert result["user"] == account.body["user"]
        assert result["refreshToken"] != account.refresh_token
        sid = jwt.decode(result["token"], options={"verify_signature": False})["sid"]
        assert sid != account.session_id  # every login is a session of its own
        me = (await api.call("GET", "/api/auth/me", token=result["token"])).ok()
        assert me["user"]["id"] == account.id


async def test_login_failure_is_one_identical_answer_whether_or_not_the_account_exists(
    api: Api,
) -> None:
    account = await api.register()
    _, unknown = api.identity()
    attempts = [
        {"email": account.email, "password": "wrong password"},
        {"username": account.username, "password": "wrong password"},
        {"email": f"{unknown}@example.com", "password": "wrong password"},
        {"username": unknown, "password": "wrong password"},
        {"username": unknown, "password": PASSWORD},
    ]
    replies = [
        await api.call(
            "POST",
            "/api/auth/login",
            json=attempt,
            headers={"X-Request-Id": "same-request-id"},
            ip=f"10.8.0.{i}",
        )
        for i, attempt in enumerate(attempts, 1)
    ]
    first = replies[0]
    problem = first.problem(401)
    assert problem["detail"] == "Invalid email, username or password"
    for reply in replies[1:]:
        assert reply.status == 401
        assert reply.body == first.body
        assert reply.headers["Content-Type"] == first.headers["Content-Type"]


async def test_login_with_a_password_longer_than_72_bytes_is_an_ordinary_failure(
    api: Api,
) -> None:
    account = await api.register()
    for password in (PASSWORD + "x" * 80, "é" * 37):
        for who in ({"username": account.username}, {"username": "nobody-" + uuid.uuid4().hex}):
            reply = await api.call("POST", "/api/auth/login", json={**who, "password": password})
            assert reply.problem(401)["detail"] == "Invalid email, username or password"


async def test_login_with_a_nul_byte_in_the_name_is_an_ordinary_failure(api: Api) -> None:
    for who in ({"email": "nul\x00byte@example.com"}, {"username": "nul\x00byte"}):
        reply = await api.call("POST", "/api/auth/login", json={**who, "password": PASSWORD})
        assert reply.problem(401)["detail"] == "Invalid email, username or password"


@pytest.mark.parametrize(
    "body",
    [
        {"password": PASSWORD},
        {"email": "a@example.com", "username": "someone", "password": PASSWORD},
    ],
    ids=["neither", "both"],
)
async def test_login_needs_exactly_one_of_email_or_username(api: Api, body: dict[str, str]) -> None:
    reply = await api.call("POST", "/api/auth/login", json=body)
    assert reply.field_errors() == {"email"}


async def test_login_names_a_missing_password(api: Api) -> None:
    reply = await api.call("POST", "/api/auth/login", json={"username": "someone"})
    assert reply.field_errors() == {"password"}


# --- rate limits ----------------------------------------------------------------------------


async def test_failed_logins_lock_the_account_from_that_address_only(
    api: Api, auth_server: AuthServer
) -> None:
    account = await api.register()
    wrong = {"username": account.username, "password": "wrong password"}
    for _ in range(3):  # LOGIN_MAX_FAILURES_PER_ACCOUNT, from one address
        (await api.call("POST", "/api/auth/login", json=wrong, ip="10.7.0.1")).problem(401)

    right = {"username": account.username, "password": PASSWORD}
    locked = await api.call("POST", "/api/auth/login", json=right, ip="10.7.0.1")
    assert "account from this address" in locked.problem(429)["detail"]
    retry_after(locked.headers, auth_server.settings.limits.window_seconds)
    # The owner, elsewhere, is not locked out by someone else's guesses.
    (await api.call("POST", "/api/auth/login", json=right, ip="10.7.9.1")).ok()


async def test_guesses_spread_over_addresses_stop_at_the_accounts_ceiling(
    api: Api, auth_server: AuthServer
) -> None:
    account = await api.register()
    wrong = {"username": account.username, "password": "wrong password"}
    for i in range(5):  # LOGIN_MAX_FAILURES_PER_ACCOUNT_ALL_ADDRESSES, each from another
        reply = await api.call("POST", "/api/auth/login", json=wrong, ip=f"10.9.{i}.1")
        reply.problem(401)
    right = {"username": account.username, "password": PASSWORD}
    locked = await api.call("POST", "/api/auth/login", json=right, ip="10.9.9.1")
    assert locked.problem(429)["detail"] == "Too many failed logins for this account"
    retry_after(locked.headers, auth_server.settings.limits.window_seconds)


async def test_concurrent_guesses_cannot_exceed_the_account_limit(api: Api) -> None:
    account = await api.register()
    wrong = {"username": account.username, "password": "wrong password"}
    replies = await asyncio.gather(
        *(api.call("POST", "/api/auth/login", json=wrong, ip="10.8.0.1") for _ in range(12))
    )
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [401] * 3 + [429] * 9  # LOGIN_MAX_FAILURES_PER_ACCOUNT is 3 here
    spread = await asyncio.gather(
        *(api.call("POST", "/api/auth/login", json=wrong, ip=f"10.8.{i}.2") for i in range(12))
    )
    # The 3 above count towards the ceiling of 5 over every address: 2 more pass.
    assert sorted(reply.status for reply in spread) == [401] * 2 + [429] * 10


async def test_a_successful_login_resets_the_failure_count(api: Api) -> None:
    account = await api.register()
    wrong = {"username": account.username, "password": "wrong password"}
    right = {"username": account.username, "password": PASSWORD}
    for _ in range(2):  # 2 + 2 failures would pass the limit of 3 but for the success between
        for _ in range(2):
            (await api.call("POST", "/api/auth/login", json=wrong, ip="10.6.0.1")).problem(401)
        (await api.call("POST", "/api/auth/login", json=right, ip="10.6.0.1")).ok()


async def test_login_attempts_are_limited_per_address(api: Api, auth_server: AuthServer) -> None:
    account = await api.register()
    for _ in range(6):  # LOGIN_MAX_ATTEMPTS_PER_IP, each on another (unknown) account
        _, unknown = api.identity()
        body = {"username": unknown, "password": PASSWORD}
        (await api.call("POST", "/api/auth/login", json=body)).problem(401)

    right = {"username": account.username, "password": PASSWORD}
    throttled = await api.call("POST", "/api/auth/login", json=right)
    assert "login attempts" in throttled.problem(429)["detail"]
    retry_after(throttled.headers, auth_server.settings.limits.window_seconds)

    (await api.call("POST", "/api/auth/login", json=right, ip="10.5.0.1")).ok()


async def test_registrations_are_limited_per_address(api: Api) -> None:
    for _ in range(3):  # REGISTER_MAX_PER_IP
        (await api.call("POST", "/api/auth/register", json=registration(api))).ok(201)
    throttled = await api.call("POST", "/api/auth/register", json=registration(api))
    assert "registrations" in throttled.problem(429)["detail"]
    retry_after(throttled.headers, 3600)
    (await api.call("POST", "/api/auth/register", json=registration(api), ip="10.4.0.1")).ok(201)


async def test_the_address_is_the_right_most_forwarded_entry(api: Api) -> None:
    """A client cannot dodge the per-address limit by prepending addresses of its own."""
    for i in range(3):
        forged = {"X-Forwarded-For": f"203.0.113.{i}, {api.ip}"}
        reply = await api.call("POST", "/api/auth/register", json=registration(api), headers=forged)
        reply.ok(201)
    forged = {"X-Forwarded-For": f"203.0.113.99, {api.ip}"}
    reply = await api.call("POST", "/api/auth/register", json=registration(api), headers=forged)
    reply.problem(429)


# --- user.registered ------------------------------------------------------------------------


async def test_user_registered_arrives_exactly_once_per_registration(
    api: Api, probe: Probe
) -> None:
    queue = await probe(USER_REGISTERED)

    sequential = [await api.register(display_name=f"Seq {i}") for i in range(2)]
    concurrent = await asyncio.gather(*(api.register() for _ in range(6)))
    email, _ = api.identity()
    raced = await asyncio.gather(
        *(
            api.call(
                "POST",
                "/api/auth/register",
                json=registration(api, email=email),
                ip=f"10.3.0.{i}",
            )
            for i in range(1, 5)
        )
    )
    winners = [reply.ok(201) for reply in raced if reply.status == 201]
    assert len(winners) == 1
    accounts = {
        a.id: (a.email, a.username, a.body["user"]["displayName"])
        for a in [*sequential, *concurrent]
    }
    user = winners[0]["user"]
    accounts[user["id"]] = (user["email"], user["username"], user["displayName"])

    messages = await collect(queue, len(accounts))
    assert await collect_settled(queue, quiet=1.0) == []

    received = [decode_envelope(message.body) for message in messages]
    assert sorted(str(e.data.user_id) for e in received) == sorted(accounts)
    for envelope, message in zip(received, messages, strict=True):
        assert envelope.type == USER_REGISTERED
        assert envelope.producer == "auth"
        assert message.message_id == str(envelope.id)
        data = envelope.data
        assert (data.email, data.username, data.display_name) == accounts[str(data.user_id)]
    assert len({e.id for e in received}) == len(received)
