"""Push to an offline user's devices, through the API gateway, with the workers' real adapters
and local stand-ins of Web Push and APNs (``devstack.push_standins``) that verify and decrypt
what they receive."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp

from devstack.push_standins import PushStandins
from e2e.accounts import direct_conversation, register

PACING_SECONDS = 2.0  # NOTIFICATION_PUSH_INTERVAL's default, which the e2e fleet keeps


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

    async with asyncio.timeout(PACING_SECONDS * 5):
        while not (
            pushes(push_standins.web_push, subscription.id)
            and pushes(push_standins.apns, phone)
            and pushes(push_standins.web_push, subscription.id)[-1].payload["count"] == 3
            and pushes(push_standins.apns, phone)[-1].payload["count"] == 3
        ):
            await asyncio.sleep(0.1)
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
