"""Accounts and sessions through the API gateway, as a client app uses them."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

from e2e.clients import connected_socket, refusal_message, refused_connect
from e2e.fleet import RunningFleet


async def post(
    http: aiohttp.ClientSession, path: str, body: object, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(path, json=body, headers=headers) as response:
        payload = await response.json(content_type=None) if response.status != 204 else None
        return response.status, payload


async def get(http: aiohttp.ClientSession, path: str, token: str) -> tuple[int, Any]:
    async with http.get(path, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json(content_type=None)


async def test_register_login_me_refresh_logout_then_me_is_401(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    name = f"e2e{uuid.uuid4().hex[:10]}"
    email = f"{name}@example.com"
    status, registered = await post(
        http, "/api/auth/register", {"email": email, "username": name, "password": "s3cret-pass"}
    )
    assert status == 201, registered
    assert registered["user"]["username"] == name
    assert {"token", "expiresAt", "refreshToken"} <= registered.keys()

    status, logged_in = await post(
        http, "/api/auth/login", {"email": email.upper(), "password": "s3cret-pass"}
    )
    assert status == 200, logged_in
    token = logged_in["token"]

    status, me = await get(http, "/api/auth/me", token)
    assert (status, me["user"]["id"]) == (200, registered["user"]["id"])

    status, refreshed = await post(
        http, "/api/auth/refresh", {"refreshToken": logged_in["refreshToken"]}
    )
    assert status == 200, refreshed
    assert refreshed["refreshToken"] != logged_in["refreshToken"]
    new_token = refreshed["token"]
    async with connected_socket(
        fleet.public_url, auth={"token": new_token}, transports=["websocket"]
    ) as socket:
        assert socket.connected

    status, _ = await post(http, "/api/auth/logout", None, token=new_token)
    assert status == 204

    status, problem = await get(http, "/api/auth/me", new_token)
    assert status == 401
    assert problem["status"] == 401
    # The same session's earlier token is revoked too, and no other service accepts either.
    assert (await get(http, "/api/auth/me", token))[0] == 401
    _, data = await refused_connect(
        fleet.public_url, auth={"token": new_token}, transports=["websocket"]
    )
    assert "revoked" in (refusal_message(data) or "")


async def test_a_rotated_refresh_token_presented_again_ends_the_session(
    http: aiohttp.ClientSession,
) -> None:
    name = f"e2e{uuid.uuid4().hex[:10]}"
    _, registered = await post(
        http,
        "/api/auth/register",
        {"email": f"{name}@example.com", "username": name, "password": "s3cret-pass"},
    )
    first = registered["refreshToken"]
    status, rotated = await post(http, "/api/auth/refresh", {"refreshToken": first})
    assert status == 200

    status, problem = await post(http, "/api/auth/refresh", {"refreshToken": first})
    assert status == 401
    assert "reuse" in problem["detail"]
    # The thief's copy and the legitimate holder's newer token are both dead now.
    assert (await post(http, "/api/auth/refresh", {"refreshToken": rotated["refreshToken"]}))[
        0
    ] == 401
    assert (await get(http, "/api/auth/me", rotated["token"]))[0] == 401
