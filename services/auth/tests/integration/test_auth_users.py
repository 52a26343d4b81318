"""Users and profiles: ``/api/auth/me``, public user lookups, prefix search with pagination,
profile and display-name changes (``user.updated``), and the OpenAPI document."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
from openapi_spec_validator import validate

from auth.routes import OPENAPI_PATH
from contracts.envelope import decode_envelope
from contracts.names import USER_AVATAR_CHANGED, USER_UPDATED
from devstack.api_routes import documented_operations, served_operations
from devstack.broker_probe import collect, collect_settled
from devstack.http_replies import every_page

if TYPE_CHECKING:
    from devstack.broker_probe import Probe
    from services.auth.tests.integration.auth_rig import Account, Api, AuthServer

pytestmark = pytest.mark.integration

PUBLIC_KEYS = {"id", "username", "displayName", "createdAt", "profile"}
PROFILE = {
    "bio": "Writes compilers for fun.",
    "avatarMediaId": "5f0c7c1e-4a55-4f0e-9a0b-3d7e2f6a9c11",
    "statusText": "In a meeting",
    "timezone": "Europe/Paris",
}


def tag() -> str:
    """A prefix no other test's users share."""
    return f"s{uuid.uuid4().hex[:8]}"


async def search(api: Api, token: str, **params: str) -> Any:
    return await api.call("GET", "/api/users", token=token, params=params)


async def patch_profile(api: Api, account: Account, body: object) -> Any:
    return await api.call("PATCH", "/api/users/me/profile", token=account.token, json=body)


# --- me and public users --------------------------------------------------------------------


async def test_me_returns_the_signed_in_account_with_its_email(api: Api) -> None:
    account = await api.register(display_name="Ada")
    me = (await api.call("GET", "/api/auth/me", token=account.token)).ok()
    assert me == {"user": account.body["user"]}
    assert me["user"]["email"] == account.email
    assert me["user"]["displayName"] == "Ada"


async def test_a_user_is_shown_with_public_fields_only(api: Api) -> None:
    viewer, shown = await api.register(), await api.register(display_name="Shown")
    (await patch_profile(api, shown, PROFILE)).ok()

    reply = await api.call("GET", f"/api/users/{shown.id}", token=viewer.token)
    user = reply.ok()["user"]
    assert set(user) == PUBLIC_KEYS
    assert user["id"] == shown.id
    assert user["username"] == shown.username
    assert user["displayName"] == "Shown"
    assert user["createdAt"] == shown.body["user"]["createdAt"]
    assert user["profile"] == PROFILE
    assert shown.email.encode() not in reply.body
    assert b"email" not in reply.body


@pytest.mark.parametrize(
    "user_id",
    [str(uuid.uuid4()), "not-a-uuid", "12345", f"{uuid.uuid4()}x"],
    ids=["unknown", "word", "number", "uuid-with-tail"],
)
async def test_an_unknown_or_malformed_user_id_is_404(api: Api, user_id: str) -> None:
    """An unknown id names no user; anything but a UUID is no route at all."""
    account = await api.register()
    reply = await api.call("GET", f"/api/users/{user_id}", token=account.token)
    problem = reply.problem(404)
    if len(user_id) == 36:
        assert problem["detail"] == "No such user"


async def test_me_is_no_user_id_but_the_callers_own_account(api: Api) -> None:
    """``/api/users/me`` is the caller's account (PATCH, DELETE; read it at /api/auth/me)."""
    account = await api.register()
    reply = await api.call("GET", "/api/users/me", token=account.token)
    reply.problem(405)
    assert set(reply.headers["Allow"].split(",")) == {"PATCH", "DELETE"}


# --- search ---------------------------------------------------------------------------------


async def test_search_matches_a_prefix_of_username_or_display_name_in_any_case(
    api: Api,
) -> None:
    prefix = tag()
    viewer = await api.register()
    by_username = await api.register(username=f"{prefix}_Alice")
    by_display_name = await api.register(display_name=f"{prefix.upper()} Bob")
    not_a_prefix = await api.register(username=f"x{prefix}", display_name=f"Mr {prefix}")

    for q in (prefix, prefix.upper(), prefix[:-1]):
        users = (await search(api, viewer.token, q=q)).ok()["users"]
        ids = {user["id"] for user in users}
        assert {by_username.id, by_display_name.id} <= ids
        assert not_a_prefix.id not in ids
    users = (await search(api, viewer.token, q=f"{prefix}_al")).ok()["users"]
    assert [user["id"] for user in users] == [by_username.id]


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 6, 50])
async def test_search_pages_return_every_match_exactly_once(api: Api, limit: int) -> None:
    prefix = tag()
    viewer = await api.register()
    matches = await asyncio.gather(
        *(api.register(username=f"{prefix}{i}") for i in range(4)),
        api.register(username=f"{prefix.upper()}Z"),
        # Matched by display name only; their usernames sort before and after the others.
        api.register(username=f"a{uuid.uuid4().hex[:10]}", display_name=f"{prefix} first"),
        api.register(username=f"z{uuid.uuid4().hex[:10]}", display_name=f"{prefix} last"),
    )
    await api.register(username=f"{prefix[:-1]}x{uuid.uuid4().hex[:4]}")  # one letter off

    found = await every_page(
        lambda params: search(api, viewer.token, **params), "users", limit, {"q": prefix}
    )
    ids = [user["id"] for user in found]
    assert sorted(ids) == sorted(match.id for match in matches)  # each once, none missing
    assert [user["username"].lower() for user in found] == sorted(
        user["username"].lower() for user in found
    )


async def test_search_takes_percent_underscore_and_backslash_literally(api: Api) -> None:
    prefix = tag()
    viewer = await api.register()
    underscore = await api.register(username=f"{prefix}_x")
    await api.register(username=f"{prefix}ax")
    percent = await api.register(display_name=f"{prefix}%off")
    await api.register(display_name=f"{prefix}Xoff")
    backslash = await api.register(display_name=f"{prefix}\\z")
    await api.register(display_name=f"{prefix}zz")

    cases = {f"{prefix}_": underscore.id, f"{prefix}%": percent.id, f"{prefix}\\": backslash.id}
    for q, expected in cases.items():
        users = (await search(api, viewer.token, q=q)).ok()["users"]
        assert [user["id"] for user in users] == [expected], q
    assert (await search(api, viewer.token, q="%")).ok()["users"] == []
    assert (await search(api, viewer.token, q="_")).ok()["users"] == []


async def test_search_shows_public_fields_and_profiles_only(api: Api) -> None:
    prefix = tag()
    viewer = await api.register()
    shown = await api.register(username=f"{prefix}shown")
    (await patch_profile(api, shown, {"statusText": "Around"})).ok()
    reply = await search(api, viewer.token, q=prefix)
    [user] = reply.ok()["users"]
    assert set(user) == PUBLIC_KEYS
    assert user["profile"] == {"statusText": "Around"}
    assert shown.email.encode() not in reply.body


async def test_search_for_a_nul_character_finds_nobody(api: Api) -> None:
    viewer = await api.register()
    page = (await search(api, viewer.token, q="a\x00")).ok()
    assert page == {"users": [], "nextCursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x" * 65}, "q"),
        ({"q": "a", "limit": "0"}, "limit"),
        ({"q": "a", "limit": "51"}, "limit"),
        ({"q": "a", "limit": "ten"}, "limit"),
        ({"q": "a", "cursor": "not-a-cursor"}, "cursor"),
        ({"q": "a", "cursor": "WyJhIiwiYiJd"}, "cursor"),  # ["a","b"]: no id in it
        ({"q": "a", "cursor": "é"}, "cursor"),
        # shaped like a cursor, but no username holds a NUL
        ({"q": "a", "cursor": "a\u0000~f7564145-0f1d-4196-8ef5-768f7c8b0e7c"}, "cursor"),
        ({"q": "a", "sort": "email"}, "sort"),
    ],
    ids=[
        "no-q",
        "empty-q",
        "long-q",
        "limit-0",
        "limit-51",
        "limit-word",
        "cursor-garbage",
        "cursor-forged",
        "cursor-non-ascii",
        "cursor-nul",
        "unknown-parameter",
    ],
)
async def test_search_refuses_bad_parameters(api: Api, params: dict[str, str], field: str) -> None:
    viewer = await api.register()
    reply = await search(api, viewer.token, **params)
    assert reply.field_errors() == {field}


# --- profile --------------------------------------------------------------------------------


async def test_profile_fields_are_set_and_shown_everywhere(api: Api) -> None:
    account = await api.register()
    assert (await patch_profile(api, account, PROFILE)).ok() == {"profile": PROFILE}

    me = (await api.call("GET", "/api/auth/me", token=account.token)).ok()
    assert me["user"]["profile"] == PROFILE
    login = await api.login(account)
    assert login.body["user"]["profile"] == PROFILE
    refreshed = await api.call(
        "POST", "/api/auth/refresh", json={"refreshToken": login.refresh_token}
    )
    assert refreshed.ok()["user"]["profile"] == PROFILE


async def test_omitted_profile_fields_stay_and_null_clears_one(api: Api) -> None:
    account = await api.register()
    (await patch_profile(api, account, PROFILE)).ok()

    changed = (await patch_profile(api, account, {"bio": "New bio"})).ok()
    assert changed == {"profile": {**PROFILE, "bio": "New bio"}}

    cleared = await patch_profile(api, account, {"statusText": None, "avatarMediaId": None})
    expected = {"bio": "New bio", "timezone": PROFILE["timezone"]}
    assert cleared.ok() == {"profile": expected}
    assert (await patch_profile(api, account, {})).ok() == {"profile": expected}
    me = (await api.call("GET", "/api/auth/me", token=account.token)).ok()
    assert me["user"]["profile"] == expected


async def test_profile_accepts_values_at_their_limits(api: Api) -> None:
    account = await api.register()
    edges = {"bio": "b" * 500, "statusText": "s" * 140, "timezone": "America/Argentina/Salta"}
    assert (await patch_profile(api, account, edges)).ok() == {"profile": edges}
    utc = (await patch_profile(api, account, {"timezone": "UTC"})).ok()
    assert utc["profile"]["timezone"] == "UTC"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"bio": "b" * 501}, {"bio"}),
        ({"bio": "b" * 2000}, {"bio"}),
        ({"bio": 5}, {"bio"}),
        ({"statusText": "s" * 141}, {"statusText"}),
        ({"timezone": "Mars/Olympus_Mons"}, {"timezone"}),
        ({"timezone": "europe/paris"}, {"timezone"}),
        ({"timezone": ""}, {"timezone"}),
        ({"avatarMediaId": "not-a-uuid"}, {"avatarMediaId"}),
        ({"avatarMediaId": 7}, {"avatarMediaId"}),
        ({"displayName": "not here"}, {"displayName"}),
        ({"email": "x@example.com"}, {"email"}),
        (
            {"bio": "b" * 501, "statusText": "s" * 141, "timezone": "Nowhere/Land"},
            {"bio", "statusText", "timezone"},
        ),
    ],
    ids=[
        "bio-501",
        "bio-2000",
        "bio-number",
        "status-141",
        "timezone-unknown",
        "timezone-wrong-case",
        "timezone-empty",
        "avatar-not-uuid",
        "avatar-number",
        "unknown-displayName",
        "unknown-email",
        "three-at-once",
    ],
)
async def test_profile_refuses_invalid_and_unknown_fields_and_changes_nothing(
    api: Api, body: dict[str, Any], fields: set[str]
) -> None:
    account = await api.register()
    (await patch_profile(api, account, PROFILE)).ok()
    reply = await patch_profile(api, account, body)
    assert reply.field_errors() == fields
    me = (await api.call("GET", "/api/auth/me", token=account.token)).ok()
    assert me["user"]["profile"] == PROFILE


async def test_profile_refuses_a_body_that_is_not_an_object(api: Api) -> None:
    account = await api.register()
    (await patch_profile(api, account, ["bio"])).problem(422)
    reply = await api.call(
        "PATCH",
        "/api/users/me/profile",
        token=account.token,
        data=b"{",
        headers={"Content-Type": "application/json"},
    )
    reply.problem(400)


# --- display name ---------------------------------------------------------------------------


async def test_changing_the_display_name_publishes_user_updated(api: Api, probe: Probe) -> None:
    account = await api.register()
    queue = await probe(USER_UPDATED)
    before = account.body["user"]

    reply = await api.call(
        "PATCH", "/api/users/me", token=account.token, json={"displayName": "Renamed Person"}
    )
    user = reply.ok()["user"]
    assert user["displayName"] == "Renamed Person"
    assert {k: v for k, v in user.items() if k not in {"displayName", "updatedAt"}} == {
        k: v for k, v in before.items() if k not in {"displayName", "updatedAt"}
    }
    assert datetime.fromisoformat(user["updatedAt"]) > datetime.fromisoformat(before["updatedAt"])
    me = (await api.call("GET", "/api/auth/me", token=account.token)).ok()
    assert me["user"] == user

    [message] = await collect(queue, 1)
    assert await collect_settled(queue, quiet=0.5) == []
    event = decode_envelope(message.body)
    assert event.type == USER_UPDATED
    assert str(event.data.user_id) == account.id
    assert event.data.username == account.username
    assert event.data.display_name == "Renamed Person"
    assert event.data.updated_at == datetime.fromisoformat(user["updatedAt"])

    viewer = await api.register()
    found = (await search(api, viewer.token, q="renamed pers")).ok()["users"]
    assert account.id in {u["id"] for u in found}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"displayName": ""}, "displayName"),
        ({"displayName": "   "}, "displayName"),
        ({"displayName": "x" * 65}, "displayName"),
        ({"displayName": "nul\x00"}, "displayName"),
        ({"displayName": None}, "displayName"),
        ({}, "displayName"),
        ({"displayName": "Fine", "username": "new"}, "username"),
    ],
    ids=["empty", "blank", "65-chars", "nul", "null", "missing", "unknown-field"],
)
async def test_display_name_changes_are_validated_and_publish_nothing(
    api: Api, probe: Probe, body: dict[str, Any], field: str
) -> None:
    account = await api.register()
    queue = await probe(USER_UPDATED)
    reply = await api.call("PATCH", "/api/users/me", token=account.token, json=body)
    assert reply.field_errors() == {field}
    me = (await api.call("GET", "/api/auth/me", token=account.token)).ok()
    assert me["user"] == account.body["user"]
    assert await collect_settled(queue, quiet=0.3) == []


# --- OpenAPI --------------------------------------------------------------------------------


async def test_openapi_document_is_valid_and_lists_every_api_route(
    api: Api, auth_server: AuthServer
) -> None:
    reply = await api.call("GET", OPENAPI_PATH)  # no token needed
    document = reply.ok()
    validate(document)
    assert document["openapi"].startswith("3.1")

    routed = served_operations(auth_server.app, "/api/", OPENAPI_PATH)
    assert routed
    assert routed == documented_operations(document)

    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    public = {
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/refresh"),
    }
    for key, operation in operations.items():
        assert ("security" in operation) == (key not in public), key
        if "security" in operation:
            assert "401" in operation["responses"], key


async def test_an_avatar_must_be_a_processed_image_of_the_callers_and_is_announced(
    api: Api, auth_server: AuthServer, probe: Probe
) -> None:
    account = await api.register()
    queue = await probe(USER_AVATAR_CHANGED)
    refusals: dict[str, tuple[dict[str, Any], str]] = {
        str(uuid.uuid4()): ({"ownerId": str(uuid.uuid4())}, "must be an image you uploaded"),
        str(uuid.uuid4()): ({"status": "pending"}, "the image is not processed yet"),
        str(uuid.uuid4()): ({"status": "rejected"}, "the image was rejected"),
        str(uuid.uuid4()): (
            {"contentType": "video/mp4", "hasThumbnail": False},
            "must be an image",
        ),
    }
    for media_id, (described, reason) in refusals.items():
        auth_server.chat.described[media_id] = described
        problem = (await patch_profile(api, account, {"avatarMediaId": media_id})).problem(422)
        assert problem["errors"] == [{"field": "avatarMediaId", "message": reason}]
    missing = str(uuid.uuid4())
    auth_server.chat.missing.add(missing)
    problem = (await patch_profile(api, account, {"avatarMediaId": missing})).problem(422)
    assert problem["errors"][0]["message"] == "no such media of yours"
    assert await collect_settled(queue, quiet=0.3) == []  # nothing changed, nothing announced

    chosen = str(uuid.uuid4())
    assert (await patch_profile(api, account, {"avatarMediaId": chosen})).ok() == {
        "profile": {"avatarMediaId": chosen}
    }
    (await patch_profile(api, account, {"avatarMediaId": None})).ok()
    events = [decode_envelope(m.body).data for m in await collect(queue, 2)]
    assert [(str(e.user_id), e.avatar_media_id) for e in events] == [
        (account.id, uuid.UUID(chosen)),
        (account.id, None),
    ]
