"""Conversations and messages through the API gateway, between users registered with auth (a
moment before: chat asks auth about a user it has not heard of yet)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

from e2e.accounts import create_direct, register


@dataclass(frozen=True, slots=True)
class User:
    id: str
    token: str

    @classmethod
    def of(cls, registered: dict[str, Any]) -> User:
        """The user of ``register``'s answer."""
        return cls(registered["user"]["id"], registered["token"])


async def call(
    http: aiohttp.ClientSession, method: str, path: str, user: User, body: object = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {user.token}"}
    async with http.request(method, path, json=body, headers=headers) as response:
        payload = await response.json(content_type=None) if response.status != 204 else None
        return response.status, payload


async def test_direct_conversation_send_list_read_and_history(
    http: aiohttp.ClientSession,
) -> None:
    alice, bob, carol = [
        User.of(registered)
        for registered in await asyncio.gather(register(http), register(http), register(http))
    ]

    status, created = await create_direct(http, alice.token, bob.id)
    assert status == 201, created
    conversation = created["conversation"]
    conversation_id = conversation["id"]
    assert conversation["type"] == "direct"
    assert {p["userId"] for p in conversation["participants"]} == {alice.id, bob.id}
    # One direct conversation per pair, whoever asks and however often.
    for creator, other in ((alice, bob), (bob, alice)):
        status, again = await create_direct(http, creator.token, other.id)
        assert (status, again["conversation"]["id"]) == (200, conversation_id), again

    messages_path = f"/api/chat/{conversation_id}/messages"
    sent = []
    for number in (1, 2, 3):
        body = {"content": f"hello {number}", "clientMessageId": f"e2e-{number}"}
        status, reply = await call(http, "POST", messages_path, alice, body)
        assert status == 201, reply
        sent.append(reply["message"])
    assert [m["seq"] for m in sent] == [1, 2, 3]
    status, resent = await call(
        http, "POST", messages_path, alice, {"content": "hello 3", "clientMessageId": "e2e-3"}
    )
    assert (status, resent["message"]) == (200, sent[2])

    status, page = await call(http, "GET", "/api/chat", bob)
    assert status == 200, page
    [listed] = [c for c in page["conversations"] if c["id"] == conversation_id]
    assert listed["lastMessage"] == sent[2]
    assert (listed["lastSeq"], listed["unreadCount"]) == (3, 3)
    status, own = await call(http, "GET", f"/api/chat/{conversation_id}", alice)
    assert (status, own["conversation"]["unreadCount"]) == (200, 0)  # the sender has read them

    read_path = f"/api/chat/{conversation_id}/read"
    status, marker = await call(http, "POST", read_path, bob, {"seq": 2})
    assert (status, marker) == (200, {"lastReadSeq": 2, "unreadCount": 1})
    status, marker = await call(http, "POST", read_path, bob, {"seq": 1})
    assert (status, marker) == (200, {"lastReadSeq": 2, "unreadCount": 1})  # never backwards
    status, seen = await call(http, "GET", f"/api/chat/{conversation_id}", bob)
    assert (status, seen["conversation"]["unreadCount"]) == (200, 1)

    status, history = await call(http, "GET", f"{messages_path}?after=1", bob)
    assert status == 200, history
    assert [m["seq"] for m in history["messages"]] == [2, 3]
    assert history["messages"] == sent[1:]
    assert history["hasMore"] is False

    for path in (f"/api/chat/{conversation_id}", messages_path):
        status, problem = await call(http, "GET", path, carol)
        assert (status, problem["status"]) == (404, 404), problem
    status, problem = await call(http, "POST", read_path, carol, {"seq": 1})
    assert status == 404, problem
