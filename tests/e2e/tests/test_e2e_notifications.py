"""Notifications through the API gateway: stored while offline, pushed live while elsewhere."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from devstack.waiting import until, until_equal
from e2e.accounts import PASSWORD, direct_conversation, register
from e2e.clients import connected_socket
from e2e.fleet import RunningFleet


async def send(http: aiohttp.ClientSession, token: str, conversation_id: str, text: str) -> None:
    async with http.post(
        f"/api/chat/{conversation_id}/messages",
        json={"content": text},
        headers={"Authorization": f"Bearer {token}"},
    ) as reply:
        assert reply.status == 201, await reply.text()


async def notifications(http: aiohttp.ClientSession, token: str) -> dict[str, Any]:
    async with http.get(
        "/api/notifications", headers={"Authorization": f"Bearer {token}"}
    ) as reply:
        body: dict[str, Any] = await reply.json()
        assert reply.status == 200, body
        return body


async def test_offline_b_finds_the_notification_then_gets_new_ones_live_while_elsewhere(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob, carol = await asyncio.gather(
        register(http, tag="nt"), register(http, tag="nt"), register(http, tag="nt")
    )
    with_alice = await direct_conversation(http, alice, bob)
    with_carol = await direct_conversation(http, carol, bob)

    await send(http, alice["token"], with_alice, "are you there?")  # bob has no socket

    async with http.post(
        "/api/auth/login", json={"email": bob["user"]["email"], "password": PASSWORD}
    ) as reply:
        assert reply.status == 200
        token = (await reply.json())["token"]

    async def arrived() -> dict[str, Any] | None:
        listed = await notifications(http, token)
        return listed if listed["notifications"] else None

    waiting = await until(arrived, interval=0.1, what="bob's stored notification")
    [stored] = waiting["notifications"]
    assert (stored["kind"], stored["conversationId"], stored["preview"], stored["count"]) == (
        "message",
        with_alice,
        "are you there?",
        1,
    )
    assert waiting["unreadCount"] == 1

    pushed: list[dict[str, Any]] = []
    async with connected_socket(
        fleet.public_url, auth={"token": token}, transports=["websocket"]
    ) as phone:
        phone.on("notification:new", pushed.append)
        joined = await phone.call("conversation:join", {"conversationId": with_carol}, timeout=5)
        assert joined == {"ok": True}

        await send(http, alice["token"], with_alice, "hello?")  # bob reads carol's chat
        await until(lambda: len(pushed) == 1, timeout=15)
        live = pushed[0]
        assert (live["notificationId"], live["count"], live["preview"]) == (
            stored["id"],
            2,
            "hello?",
        )
        assert live["recipientId"] == bob["user"]["id"]

        # Looking at the conversation itself: no notification for its new messages.
        joined = await phone.call("conversation:join", {"conversationId": with_alice}, timeout=5)
        assert joined == {"ok": True}
        await send(http, alice["token"], with_alice, "there you are")
        # Carol's chat is no longer open: her message is notified, and comes after alice's.
        await send(http, carol["token"], with_carol, "ping")
        await until(lambda: len(pushed) == 2, timeout=15)
        await asyncio.sleep(0.3)  # a notification of alice's message, wrongly sent, arrives by now
        assert [(p["conversationId"], p["preview"]) for p in pushed[1:]] == [(with_carol, "ping")]

    async with http.post(
        "/api/notifications/read", json={"all": True}, headers={"Authorization": f"Bearer {token}"}
    ) as marked:
        assert (marked.status, (await marked.json())["unreadCount"]) == (200, 0)
    assert (await notifications(http, alice["token"]))["notifications"] == []


async def test_an_edited_or_deleted_message_leaves_no_old_text_in_the_notification(
    http: aiohttp.ClientSession,
) -> None:
    alice, bob = await asyncio.gather(register(http, tag="nt"), register(http, tag="nt"))
    conversation = await direct_conversation(http, alice, bob)
    headers = {"Authorization": f"Bearer {alice['token']}"}
    async with http.post(
        f"/api/chat/{conversation}/messages", json={"content": "my pin is 1234"}, headers=headers
    ) as reply:
        message_id = (await reply.json())["message"]["id"]
    path = f"/api/chat/{conversation}/messages/{message_id}"

    async def preview() -> str | None:
        shown = (await notifications(http, bob["token"]))["notifications"]
        return str(shown[0]["preview"]) if shown else None

    await until_equal(preview, "my pin is 1234", interval=0.1)  # bob has no socket: notified
    async with http.patch(path, json={"content": "call me"}, headers=headers) as reply:
        assert reply.status == 200, await reply.text()
    await until_equal(preview, "call me", interval=0.1)
    async with http.delete(path, headers=headers) as reply:
        assert reply.status == 204, await reply.text()
    await until_equal(preview, "[message deleted]", interval=0.1)
