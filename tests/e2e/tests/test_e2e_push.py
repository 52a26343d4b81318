"""Push to an offline user's devices, through the API gateway, with the workers' real adapters
and local stand-ins of Web Push, APNs and FCM (``devstack.push_standins``) that verify and
decrypt what they receive."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import aiohttp
import pytest

from devstack.push_standins import PushStandins, Received
from devstack.waiting import until
from e2e.accounts import PASSWORD, create_conversation, direct_conversation, register

PACING_SECONDS = 2.0  # NOTIFICATION_PUSH_INTERVAL's default, which the e2e fleet keeps
EVENTUALLY_SECONDS = 10.0  # auth's outbox, the bus and the workers' consumer, with room to spare
POLL_SECONDS = 0.05


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


async def register_device(
    http: aiohttp.ClientSession, user: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    async with http.post("/api/notifications/devices", json=body, headers=bearer(user)) as reply:
        device: dict[str, Any] = await reply.json()
        assert reply.status == 201, device
        return device


async def test_a_burst_reaches_an_offline_users_devices_once_per_interval_with_the_count(
    http: aiohttp.ClientSession, push_standins: PushStandins
) -> None:
    alice, bob = await register(http, tag="push"), await register(http, tag="push")
    conversation = await direct_conversation(http, alice, bob)
    subscription = push_standins.web_push.subscribe()
    phone, stale = secrets.token_hex(32), secrets.token_hex(32)
    push_standins.apns.gone.add(stale)  # an app Bob deleted from an old phone
    browser = await register_device(
        http, bob, {"platform": "webpush", "subscription": subscription.as_json()}
    )
    await register_device(http, bob, {"platform": "apns", "token": phone, "previews": True})
    old = await register_device(http, bob, {"platform": "apns", "token": stale})

    # Bob has no socket: he is offline. Alice writes three messages at once.
    for text in ("are you there?", "the train is late", "see you at 8"):
        async with http.post(
            f"/api/chat/{conversation}/messages", json={"content": text}, headers=bearer(alice)
        ) as reply:
            assert reply.status == 201

    def pushes(standin: Any, device: str) -> list[Any]:
        return [p for p in standin.received if p.device == device]

    def counted_three(standin: Any, device: str) -> bool:
        received = pushes(standin, device)
        return bool(received) and received[-1].payload["count"] == 3

    await until(
        lambda: (
            counted_three(push_standins.web_push, subscription.id)
            and counted_three(push_standins.apns, phone)
        ),
        timeout=PACING_SECONDS * 5,
        interval=0.1,
    )
    await asyncio.sleep(PACING_SECONDS + 0.5)  # nothing more comes after the final count

    for standin, device in ((push_standins.web_push, subscription.id), (push_standins.apns, phone)):
        received = pushes(standin, device)
        assert 1 <= len(received) <= 2, received  # the first at once, the rest folded into one
        if len(received) == 2:
            assert received[1].at - received[0].at >= PACING_SECONDS * 0.8
        final = received[-1].payload
        assert final["conversationId"] == conversation
        assert final["count"] == 3
    # Previews only where Bob allowed them.
    assert "preview" not in pushes(push_standins.web_push, subscription.id)[-1].payload
    phone_alert = pushes(push_standins.apns, phone)[-1].payload
    assert phone_alert["preview"] == "see you at 8"
    assert phone_alert["aps"]["alert"]["body"] == "see you at 8"

    # The stale phone was tried once, answered Unregistered, and is gone from Bob's devices.
    assert push_standins.apns.answered_gone.count(stale) == 1
    async with http.get("/api/notifications/devices", headers=bearer(bob)) as reply:
        listed = {d["id"] for d in (await reply.json())["devices"]}
    assert browser["id"] in listed
    assert old["id"] not in listed
    assert push_standins.web_push.refused == []
    assert push_standins.apns.refused == []


async def test_a_web_push_endpoint_that_is_no_url_is_refused_with_the_field(
    http: aiohttp.ClientSession,
) -> None:
    user = await register(http, tag="push")
    keys = {"p256dh": "B" + "A" * 86, "auth": "A" * 22}
    for endpoint in ("https://[", "https://[::1/push", "not a url"):
        body = {"platform": "webpush", "subscription": {"endpoint": endpoint, "keys": keys}}
        async with http.post(
            "/api/notifications/devices", json=body, headers=bearer(user)
        ) as reply:
            problem = await reply.json(content_type=None)
            assert reply.status == 422, (endpoint, problem)
            assert [e["field"] for e in problem["errors"]] == ["subscription.endpoint"]


async def listed_devices(http: aiohttp.ClientSession, token: str) -> dict[str, bool]:
    """The user's devices as ``GET /api/notifications/devices`` lists them to the bearer of
    ``token``: id -> whether that session registered it (``current``)."""
    async with http.get("/api/notifications/devices", headers=bearer({"token": token})) as reply:
        body = await reply.json()
        assert reply.status == 200, body
        return {device["id"]: device["current"] for device in body["devices"]}


async def signed_in(http: aiohttp.ClientSession, user: dict[str, Any], device: str) -> str:
    """A second session of ``user`` (another device's login): its access token."""
    body = {"username": user["user"]["username"], "password": PASSWORD}
    async with http.post("/api/auth/login", json=body, headers={"User-Agent": device}) as reply:
        answer = await reply.json()
        assert reply.status == 200, answer
        token: str = answer["token"]
        return token


@pytest.mark.parametrize("sign_out", ["logout", "delete-session"])
async def test_signing_a_session_out_removes_the_devices_it_registered_and_only_those(
    http: aiohttp.ClientSession, push_standins: PushStandins, sign_out: str
) -> None:
    user = await register(http, tag="push")
    laptop = user["token"]  # the session the registration opened
    phone = await signed_in(http, user, "Phone/1.0")
    subscription = push_standins.web_push.subscribe()
    laptops = await register_device(
        http, {"token": laptop}, {"platform": "webpush", "subscription": subscription.as_json()}
    )
    phones = await register_device(
        http, {"token": phone}, {"platform": "apns", "token": secrets.token_hex(32)}
    )
    assert await listed_devices(http, phone) == {laptops["id"]: False, phones["id"]: True}

    if sign_out == "logout":  # the laptop signs itself out
        async with http.post("/api/auth/logout", headers=bearer({"token": laptop})) as reply:
            assert reply.status == 204
    else:  # the phone signs the laptop out from its list of sessions
        async with http.get("/api/auth/sessions", headers=bearer({"token": phone})) as reply:
            sessions = (await reply.json())["sessions"]
        [other] = [s["id"] for s in sessions if not s["current"]]
        async with http.delete(
            f"/api/auth/sessions/{other}", headers=bearer({"token": phone})
        ) as reply:
            assert reply.status == 204

    # auth writes session.revoked; the workers' push consumer removes that session's devices.
    async def only_the_phones_remain() -> bool:
        return await listed_devices(http, phone) == {phones["id"]: True}

    await until(only_the_phones_remain, timeout=EVENTUALLY_SECONDS)
    async with http.get("/api/notifications/devices", headers=bearer({"token": laptop})) as reply:
        assert reply.status == 401  # the signed-out session can no longer list anything


async def test_a_muted_conversation_pushes_nothing_while_another_one_still_does(
    http: aiohttp.ClientSession, push_standins: PushStandins
) -> None:
    alice, bob = await register(http, tag="push"), await register(http, tag="push")
    muted = await direct_conversation(http, alice, bob)
    status, created = await create_conversation(
        http, alice["token"], {"participantIds": [bob["user"]["id"]], "title": "plans"}
    )
    assert status == 201, created
    other = created["conversation"]["id"]
    async with http.put(
        f"/api/chat/{muted}/notifications", json={"level": "none"}, headers=bearer(bob)
    ) as reply:
        assert (reply.status, await reply.json()) == (200, {"level": "none", "isDefault": False})
    subscription = push_standins.web_push.subscribe()
    await register_device(
        http, bob, {"platform": "webpush", "subscription": subscription.as_json()}
    )

    # Bob is offline. Alice writes in the muted conversation (naming him too: muted is muted),
    # then in the group, where naming him notifies him (a group's default is mentions).
    mention = f"@{bob['user']['username']}"
    for conversation, text in (
        (muted, "are you there?"),
        (muted, f"{mention} answer me"),
        (other, f"{mention} dinner at 8?"),
    ):
        async with http.post(
            f"/api/chat/{conversation}/messages", json={"content": text}, headers=bearer(alice)
        ) as reply:
            assert reply.status == 201, await reply.text()

    def bobs(conversation: str) -> list[Received]:
        return [
            push
            for push in push_standins.web_push.received
            if push.device == subscription.id and push.payload["conversationId"] == conversation
        ]

    async def the_group_pushed() -> bool:
        return bool(bobs(other))

    # The group's push, sent after the muted conversation's messages, is the synchronisation
    # point; then a bounded window in which a late push of the muted one would still show.
    await until(the_group_pushed, timeout=EVENTUALLY_SECONDS)
    window_ends = time.monotonic() + PACING_SECONDS
    while time.monotonic() < window_ends and not bobs(muted):
        await asyncio.sleep(POLL_SECONDS)
    assert bobs(muted) == []
    assert bobs(other)[0].payload["kind"] == "mention"
    async with http.get("/api/notifications", headers=bearer(bob)) as reply:
        notified = {n["conversationId"] for n in (await reply.json())["notifications"]}
    assert notified == {other}
    assert push_standins.web_push.refused == []
