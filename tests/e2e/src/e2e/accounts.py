"""Accounts and conversations through the API gateway, as the e2e tests set them up.

``register`` signs a new user up with auth and returns auth's answer (``user``, ``token``,
``refreshToken``...). Auth limits registrations per client address, so a test that must stay
clear of the others' budget passes a session bound to an address of its own.

A conversation is created once, never retried: chat asks auth about a user it has not heard of
yet, so a user registered a moment ago is accepted at once (docs/chat.md), and a retry here
would hide a regression of that.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

PASSWORD = "s3cret-pass"


async def register(
    http: aiohttp.ClientSession, *, tag: str = "e2e", password: str = PASSWORD
) -> dict[str, Any]:
    """A new account (a unique name starting with ``tag``): auth's 201 body."""
    name = f"{tag}{uuid.uuid4().hex[:10]}"
    body = {"email": f"{name}@example.com", "username": name, "password": password}
    async with http.post("/api/auth/register", json=body) as response:
        registered: dict[str, Any] = await response.json(content_type=None)
        assert response.status == 201, registered
        return registered


async def create_direct(http: aiohttp.ClientSession, token: str, other_id: str) -> tuple[int, Any]:
    """POST /api/chat for a direct conversation with ``other_id`` as the bearer of ``token``;
    (status, body)."""
    return await create_conversation(http, token, {"participantIds": [other_id]})


async def create_conversation(
    http: aiohttp.ClientSession, token: str, body: dict[str, Any]
) -> tuple[int, Any]:
    """POST /api/chat with ``body`` as the bearer of ``token``; (status, body)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post("/api/chat", json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def direct_conversation(
    http: aiohttp.ClientSession, creator: dict[str, Any], other: dict[str, Any]
) -> str:
    """The id of the direct conversation of two registered users (``register``'s answers)."""
    status, body = await create_direct(http, creator["token"], other["user"]["id"])
    assert status in (200, 201), body
    return str(body["conversation"]["id"])


async def accept(http: aiohttp.ClientSession, user: dict[str, Any], conversation_id: str) -> None:
    """``user`` takes part in a conversation someone else opened (presence and read markers
    are shared only by who took part)."""
    headers = {"Authorization": f"Bearer {user['token']}"}
    async with http.post(f"/api/chat/{conversation_id}/accept", headers=headers) as response:
        assert response.status == 204, await response.text()
