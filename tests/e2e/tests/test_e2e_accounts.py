"""A user's own account security through the API gateway: the password, the signed-in devices,
and revocations that outlive a loss of Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import redis.asyncio as redis

from devstack.waiting import until
from e2e.accounts import PASSWORD, register
from e2e.clients import connected_socket, refusal_message, refused_connect
from e2e.fleet import RunningFleet

NEW_PASSWORD = "an0ther-pass-phrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def status_of(http: aiohttp.ClientSession, path: str, token: str) -> int:
    async with http.get(path, headers=bearer(token)) as reply:
        await reply.read()
        return reply.status


async def login(
    http: aiohttp.ClientSession, user: dict[str, Any], password: str, device: str = "e2e"
) -> aiohttp.ClientResponse:
    body = {"username": user["user"]["username"], "password": password}
    async with http.post("/api/auth/login", json=body, headers={"User-Agent": device}) as reply:
        await reply.read()
        return reply


async def signed_in(http: aiohttp.ClientSession, user: dict[str, Any], device: str) -> str:
    body = {"username": user["user"]["username"], "password": PASSWORD}
    async with http.post("/api/auth/login", json=body, headers={"User-Agent": device}) as reply:
        assert reply.status == 200
        token: str = (await reply.json())["token"]
        return token


async def test_a_password_change_signs_out_every_other_device(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice = await register(http, tag="pw")
    laptop = await signed_in(http, alice, "laptop")
    async with connected_socket(fleet.public_url, auth={"token": laptop}) as laptops:
        gone = asyncio.Event()
        laptops.on("disconnect", lambda *_: gone.set())
        change = "/api/auth/password"
        wrong = {"currentPassword": "not-the-password", "newPassword": NEW_PASSWORD}
        async with http.post(change, json=wrong, headers=bearer(alice["token"])) as reply:
            assert reply.status == 403
        short = {"currentPassword": PASSWORD, "newPassword": "short"}
        async with http.post(change, json=short, headers=bearer(alice["token"])) as reply:
            assert reply.status == 422
            assert (await reply.json())["errors"][0]["field"] == "newPassword"
        assert await status_of(http, "/api/auth/me", laptop) == 200  # nothing changed yet

        right = {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
        async with http.post(change, json=right, headers=bearer(alice["token"])) as reply:
            assert reply.status == 204
        async with asyncio.timeout(10):
            await gone.wait()

    for path in ("/api/auth/me", "/api/chat"):
        assert await status_of(http, path, laptop) == 401
        assert await status_of(http, path, alice["token"]) == 200  # the device that changed it
    assert (await login(http, alice, PASSWORD)).status == 401
    assert (await login(http, alice, NEW_PASSWORD)).status == 200


async def test_a_user_lists_their_devices_and_signs_one_out(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, mallory = await register(http, tag="dev"), await register(http, tag="dev")
    phone = await signed_in(http, alice, "Phone/1.0")
    async with http.get("/api/auth/sessions", headers=bearer(alice["token"])) as reply:
        sessions = (await reply.json())["sessions"]
    assert len(sessions) == 2
    [current] = [s for s in sessions if s["current"]]
    [other] = [s for s in sessions if not s["current"]]
    assert other["device"] == "Phone/1.0"
    assert {"id", "createdAt", "lastUsedAt", "expiresAt"} <= set(current)

    path = f"/api/auth/sessions/{other['id']}"
    async with http.delete(path, headers=bearer(mallory["token"])) as reply:
        assert reply.status == 404  # not hers: as if it did not exist
    assert await status_of(http, "/api/auth/me", phone) == 200

    async with connected_socket(fleet.public_url, auth={"token": phone}) as phones:
        gone = asyncio.Event()
        phones.on("disconnect", lambda *_: gone.set())
        async with http.delete(path, headers=bearer(alice["token"])) as reply:
            assert reply.status == 204
        async with asyncio.timeout(10):
            await gone.wait()
    assert await status_of(http, "/api/auth/me", phone) == 401
    async with http.delete(path, headers=bearer(alice["token"])) as reply:
        assert reply.status == 404  # already signed out
    async with http.get("/api/auth/sessions", headers=bearer(alice["token"])) as reply:
        assert [s["id"] for s in (await reply.json())["sessions"]] == [current["id"]]


async def test_a_logged_out_token_stays_refused_after_redis_loses_the_revocations(
    http: aiohttp.ClientSession, fleet: RunningFleet, fleet_redis: redis.Redis
) -> None:
    alice, bob = await register(http, tag="rv"), await register(http, tag="rv")
    async with http.post("/api/auth/logout", headers=bearer(alice["token"])) as reply:
        assert reply.status == 204
    revocations = f"{fleet.plan.redis_prefix}auth:revoked:*"
    lost = [key async for key in fleet_redis.scan_iter(match=revocations)]
    assert lost  # the logout's key and the marker
    await fleet_redis.delete(*lost)

    # While auth rebuilds, nothing is let through; afterwards the revoked token is refused
    # and a live one works again.
    statuses: dict[str, int] = {}

    async def all_refused() -> bool:
        for path in ("/api/auth/me", "/api/chat", "/api/notifications"):
            statuses[path] = await status_of(http, path, alice["token"])
        assert set(statuses.values()) <= {401, 503}, statuses
        return set(statuses.values()) == {401}

    await until(all_refused, interval=0.1, what=lambda: f"401 everywhere, not {statuses}")
    _, errors = await refused_connect(fleet.public_url, auth={"token": alice["token"]})
    assert refusal_message(errors) == "invalid token: token has been revoked"
    assert await status_of(http, "/api/chat", bob["token"]) == 200
    async with connected_socket(fleet.public_url, auth={"token": bob["token"]}) as bobs:
        assert bobs.connected


async def test_a_conversation_opens_with_a_user_registered_a_moment_ago(
    http: aiohttp.ClientSession,
) -> None:
    alice = await register(http, tag="ryw")
    for _ in range(5):
        newcomer = await register(http, tag="ryw")
        body = {"participantIds": [newcomer["user"]["id"]]}
        async with http.post("/api/chat", json=body, headers=bearer(alice["token"])) as reply:
            created = await reply.json()
            assert reply.status == 201, created  # at once: no retry, no 422 window
        [other] = [
            p for p in created["conversation"]["participants"] if p["userId"] != alice["user"]["id"]
        ]
        assert other["username"] == newcomer["user"]["username"]
    unknown = {"participantIds": ["00000000-0000-4000-8000-000000000000"]}
    async with http.post("/api/chat", json=unknown, headers=bearer(alice["token"])) as reply:
        assert reply.status == 422  # an id auth never issued is still unknown
