"""Push to devices with the real adapters against local stand-ins of each platform
(``devstack.push_standins``), which verify what the real services verify: the VAPID JWT and
the ``aes128gcm`` encryption, the APNs provider token over HTTP/2, FCM's OAuth2 token and
message shape.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import ClientSession, web

from contracts import make_envelope
from contracts.events import NotificationCreated, SessionRevoked
from devstack.push_standins import PushStandins, running_push_standins
from servicekit.http_app import METRICS
from servicekit.messaging import MESSAGING
from servicekit.presence_keys import PresenceKeys, PresenceReader
from servicekit.redis_store import KeySpace
from servicekit.resources import MONGO, REDIS
from servicekit.tokens import TokenIssuer
from workers.app import push_senders
from workers.config import load_settings
from workers.devices import Device, DeviceStore, Platform
from workers.push_delivery import PushDelivery, PushMetrics
from workers.push_sender import Delivered, Gone, PushMessage, Retry

if TYPE_CHECKING:
    from services.workers.tests.integration.workers_rig import StartedWorkers, StartWorkers

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def standins() -> AsyncIterator[PushStandins]:
    async with running_push_standins() as running:
        yield running


@pytest.fixture
async def pushing(
    workers_env: dict[str, str], start_workers: StartWorkers, standins: PushStandins
) -> StartedWorkers:
    workers_env.update(standins.env())
    return await start_workers(workers_env)


def message(preview: str = "see you at 8") -> PushMessage:
    return PushMessage(
        notification_id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        kind="message",
        count=3,
        preview=preview,
    )


def device(platform: Any, token: str, keys: dict[str, str] | None = None, **kw: Any) -> Device:
    return Device(
        id=uuid.uuid4(),
        user_id=kw.get("user_id", uuid.uuid4()),
        session_id=uuid.uuid4(),
        platform=platform,
        token=token,
        keys=keys or {},
        previews=kw.get("previews", False),
        created_at=AT,
    )


async def test_each_adapter_sends_what_its_platform_verifies(
    workers_env: dict[str, str], standins: PushStandins
) -> None:
    async with push_senders(load_settings({**workers_env, **standins.env()}).push) as senders:
        subscription = standins.web_push.subscribe()
        keys = subscription.as_json()["keys"]
        sent = message()
        web = device("webpush", subscription.endpoint, keys, previews=True)
        assert await senders["webpush"].send(web, sent) == Delivered()
        [pushed] = await standins.web_push.until(1)
        assert pushed.payload == {  # decrypted with the subscription's private key
            "notificationId": str(sent.notification_id),
            "conversationId": str(sent.conversation_id),
            "kind": "message",
            "count": 3,
            "preview": "see you at 8",
        }
        assert pushed.headers["topic"] == sent.collapse_key

        apns_token = "ab" * 32
        assert await senders["apns"].send(device("apns", apns_token), sent) == Delivered()
        [pushed] = await standins.apns.until(1)
        assert pushed.device == apns_token
        assert pushed.payload["aps"]["alert"] == {"title": "New message"}  # no preview allowed
        assert pushed.payload["aps"]["thread-id"] == str(sent.conversation_id)
        assert "preview" not in pushed.payload
        assert pushed.headers["apns-collapse-id"] == sent.collapse_key

        assert await senders["fcm"].send(device("fcm", "fcm-token-1"), sent) == Delivered()
        [pushed] = await standins.fcm.until(1)
        assert pushed.payload == {
            "notificationId": str(sent.notification_id),
            "conversationId": str(sent.conversation_id),
            "kind": "message",
            "count": "3",
        }
        for standin in (standins.web_push, standins.apns, standins.fcm):
            assert standin.refused == []


async def test_gone_devices_and_throttling_read_as_the_platforms_mean_them(
    workers_env: dict[str, str], standins: PushStandins
) -> None:
    async with push_senders(load_settings({**workers_env, **standins.env()}).push) as senders:
        subscription = standins.web_push.subscribe()
        web = device("webpush", subscription.endpoint, subscription.as_json()["keys"])
        standins.web_push.throttle[subscription.id] = 1
        assert await senders["webpush"].send(web, message()) == Retry("429 Too Many Requests", 1.0)
        standins.web_push.gone.add(subscription.id)
        assert isinstance(await senders["webpush"].send(web, message()), Gone)

        standins.apns.gone.add("cd" * 32)
        outcome = await senders["apns"].send(device("apns", "cd" * 32), message())
        assert outcome == Gone("410 Unregistered")

        standins.fcm.gone.add("uninstalled")
        outcome = await senders["fcm"].send(device("fcm", "uninstalled"), message())
        assert isinstance(outcome, Gone)
        assert "UNREGISTERED" in outcome.reason


async def test_delivery_retries_as_told_removes_gone_devices_and_spares_a_reader(
    pushing: StartedWorkers, workers_env: dict[str, str], standins: PushStandins
) -> None:
    app = pushing.app
    store = DeviceStore(app[MONGO])
    recipient, session = uuid.uuid4(), uuid.uuid4()
    subscription = standins.web_push.subscribe()
    standins.web_push.throttle[subscription.id] = 1
    await store.register(
        user_id=recipient,
        session_id=session,
        platform="webpush",
        token=subscription.endpoint,
        keys=subscription.as_json()["keys"],
        previews=False,
    )
    gone_token = "ef" * 32
    standins.apns.gone.add(gone_token)
    await store.register(
        user_id=recipient,
        session_id=session,
        platform="apns",
        token=gone_token,
        keys={},
        previews=False,
    )
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    metrics = PushMetrics(app[METRICS].registry.__class__())
    key_space = KeySpace(workers_env["REDIS_KEY_PREFIX"])
    async with push_senders(load_settings({**workers_env, **standins.env()}).push) as senders:
        delivery = PushDelivery(
            devices=store,
            presence=PresenceReader(app[REDIS], key_space),
            senders=senders,
            max_attempts=3,
            metrics=metrics,
            sleep=no_wait,
        )
        conversation = uuid.uuid4()
        created = NotificationCreated(
            notification_id=uuid.uuid4(),
            recipient_id=recipient,
            kind="message",
            conversation_id=conversation,
            message_id=uuid.uuid4(),
            preview="secret text",
            count=2,
            created_at=AT,
        )
        await delivery(make_envelope(created, producer="workers"), None)
        [pushed] = standins.web_push.received
        assert pushed.payload["count"] == 2
        assert "preview" not in pushed.payload  # previews not allowed on this device
        assert waits == [1.0]  # the Retry-After the push service asked for
        assert [d.platform for d in await store.of_user(recipient)] == ["webpush"]
        assert metrics.sent.labels("webpush")._value.get() == 1
        assert metrics.retried.labels("webpush")._value.get() == 1
        assert metrics.removed.labels("apns")._value.get() == 1

        # Looking at the conversation on a live socket: nothing is pushed.
        keys = PresenceKeys(key_space)
        sid = uuid.uuid4().hex
        await app[REDIS].zadd(keys.sockets(recipient), {sid: time.time() + 60})
        await app[REDIS].hset(keys.viewing(recipient), sid, str(conversation))
        await delivery(make_envelope(created, producer="workers"), None)
        assert len(standins.web_push.received) == 1

        # Signing the session out removes the devices it registered.
        revoked = SessionRevoked(
            user_id=recipient, session_id=session, reason="logout", revoked_at=AT, expires_at=AT
        )
        await delivery(make_envelope(revoked, producer="auth"), None)
        assert await store.of_user(recipient) == []


async def test_the_device_api_offers_the_platforms_and_checks_what_it_stores(
    pushing: StartedWorkers, workers_env: dict[str, str], standins: PushStandins
) -> None:
    issuer = TokenIssuer(load_settings(workers_env).platform.jwt)
    user, session = uuid.uuid4(), uuid.uuid4()
    headers = {"Authorization": f"Bearer {issuer.issue(user, session).token}"}
    base = f"{pushing.url}/api/notifications"
    subscription = standins.web_push.subscribe().as_json()
    async with ClientSession() as http:
        async with http.get(f"{base}/push", headers=headers) as reply:
            config = await reply.json()
        assert config == {
            "platforms": ["apns", "fcm", "webpush"],
            "webPushPublicKey": standins.web_push.vapid_public_key,
        }
        refused = [
            {
                "platform": "webpush",
                "subscription": {**subscription, "endpoint": "http://evil.test/x"},
            },
            {"platform": "webpush"},
            {"platform": "apns", "token": "not-hex"},
            {"platform": "fcm", "token": "has spaces"},
        ]
        for body in refused:
            async with http.post(f"{base}/devices", json=body, headers=headers) as reply:
                assert reply.status == 422, (body, await reply.text())
        body = {"platform": "webpush", "subscription": subscription, "previews": True}
        async with http.post(f"{base}/devices", json=body, headers=headers) as reply:
            assert reply.status == 201
            registered = await reply.json()
        assert (registered["endpoint"], registered["previews"], registered["current"]) == (
            subscription["endpoint"],
            True,
            True,
        )
        async with http.get(f"{base}/devices", headers=headers) as reply:
            assert [d["id"] for d in (await reply.json())["devices"]] == [registered["id"]]
        other = {"Authorization": f"Bearer {issuer.issue(uuid.uuid4(), uuid.uuid4()).token}"}
        async with http.delete(f"{base}/devices/{registered['id']}", headers=other) as reply:
            assert reply.status == 404
        async with http.delete(f"{base}/devices/{registered['id']}", headers=headers) as reply:
            assert reply.status == 204
        async with http.get(f"{base}/devices", headers=headers) as reply:
            assert (await reply.json())["devices"] == []


# --- the real consumer: retries, giving up, and the metrics that count them -------------------


@dataclass(frozen=True)
class Target:
    """A device of one platform as the workers store it, and as its stand-in names it."""

    platform: Platform
    token: str
    keys: dict[str, str]
    standin: Any  # the platform's stand-in (its failures, throttling and what it received)
    name: str  # what the stand-in calls the device


def target(standins: PushStandins, platform: Platform) -> Target:
    if platform == "webpush":
        subscription = standins.web_push.subscribe()
        keys = subscription.as_json()["keys"]
        return Target(platform, subscription.endpoint, keys, standins.web_push, subscription.id)
    if platform == "apns":
        token = uuid.uuid4().hex * 2
        return Target(platform, token, {}, standins.apns, token)
    token = f"fcm-{uuid.uuid4().hex}"
    return Target(platform, token, {}, standins.fcm, token)


async def workers_pushing(
    start_workers: StartWorkers,
    workers_env: dict[str, str],
    standins: PushStandins,
    max_attempts: int,
) -> StartedWorkers:
    return await start_workers(
        {**workers_env, **standins.env(), "PUSH_MAX_ATTEMPTS": str(max_attempts)}
    )


async def announce_to(app: web.Application, targets: list[Target]) -> uuid.UUID:
    """Registers the devices to one offline recipient and publishes a ``notification.created``
    for them on the bus, as the notifications consumer does; the recipient's id."""
    recipient = uuid.uuid4()
    store = DeviceStore(app[MONGO])
    for device in targets:
        await store.register(
            user_id=recipient,
            session_id=uuid.uuid4(),
            platform=device.platform,
            token=device.token,
            keys=device.keys,
            previews=False,
        )
    created = NotificationCreated(
        notification_id=uuid.uuid4(),
        recipient_id=recipient,
        kind="message",
        conversation_id=uuid.uuid4(),
        message_id=uuid.uuid4(),
        preview="are you there?",
        count=1,
        created_at=AT,
    )
    await app[MESSAGING].publisher.publish_envelopes([make_envelope(created, producer="workers")])
    return recipient


def counted(app: web.Application, metric: str, platform: str) -> float:
    return app[METRICS].registry.get_sample_value(metric, {"platform": platform}) or 0.0


async def until_counted(
    app: web.Application, metric: str, platform: str, value: float, seconds: float = 15
) -> None:
    async with asyncio.timeout(seconds):
        while counted(app, metric, platform) < value:
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("platform", "statuses"),
    [("webpush", [500]), ("apns", [503]), ("fcm", [500, 503])],
)
async def test_a_5xx_is_sent_again_after_a_growing_wait_and_then_delivered(
    start_workers: StartWorkers,
    workers_env: dict[str, str],
    standins: PushStandins,
    platform: Platform,
    statuses: list[int],
) -> None:
    app = (await workers_pushing(start_workers, workers_env, standins, max_attempts=3)).app
    device = target(standins, platform)
    device.standin.fail_with[device.name] = list(statuses)

    await announce_to(app, [device])
    [pushed] = await device.standin.until(1)
    await until_counted(app, "push_sent_total", platform, 1)

    assert pushed.device == device.name
    errors = device.standin.answered_errors
    assert [(e.device, e.status) for e in errors] == [(device.name, s) for s in statuses]
    # No Retry-After on a 5xx: 1, then 2 seconds before the next send.
    sends = [e.at for e in errors] + [pushed.at]
    for attempt, (before, after) in enumerate(itertools.pairwise(sends)):
        assert after - before >= 2**attempt - 0.05, (attempt, after - before)
    assert counted(app, "push_retried_total", platform) == len(statuses)
    assert counted(app, "push_sent_total", platform) == 1
    assert counted(app, "push_failed_total", platform) == 0
    assert device.standin.refused == []


async def test_pushes_that_keep_failing_are_given_up_after_push_max_attempts_and_counted(
    start_workers: StartWorkers, workers_env: dict[str, str], standins: PushStandins
) -> None:
    started = await workers_pushing(start_workers, workers_env, standins, max_attempts=2)
    app = started.app
    targets = [target(standins, platform) for platform in ("webpush", "fcm", "apns")]
    for device in targets:
        device.standin.fail_with[device.name] = [503, 503, 503]

    recipient = await announce_to(app, targets)
    for device in targets:
        await until_counted(app, "push_failed_total", device.platform, 1)

    for device in targets:
        # Two sends (PUSH_MAX_ATTEMPTS), one wait between them, then given up.
        assert [e.status for e in device.standin.answered_errors] == [503, 503]
        assert device.standin.fail_with[device.name] == [503]  # no third send
        assert device.standin.received == []
        assert counted(app, "push_retried_total", device.platform) == 1
        assert counted(app, "push_sent_total", device.platform) == 0
        assert counted(app, "push_devices_removed_total", device.platform) == 0
    # A service in trouble is no sign the device is gone: all three are kept.
    assert len(await DeviceStore(app[MONGO]).of_user(recipient)) == 3
    async with ClientSession() as http, http.get(f"{started.url}/metrics") as reply:
        exposed = await reply.text()
    for platform in ("webpush", "fcm", "apns"):
        assert f'push_failed_total{{platform="{platform}"}} 1.0' in exposed


async def test_an_fcm_429_is_sent_again_after_the_retry_after_fcm_names(
    start_workers: StartWorkers, workers_env: dict[str, str], standins: PushStandins
) -> None:
    app = (await workers_pushing(start_workers, workers_env, standins, max_attempts=3)).app
    device = target(standins, "fcm")
    standins.fcm.throttle[device.name] = 1
    standins.fcm.retry_after = "2"  # not the 1 s a send without Retry-After would wait

    await announce_to(app, [device])
    [pushed] = await standins.fcm.until(1)
    await until_counted(app, "push_sent_total", "fcm", 1)

    [throttled] = standins.fcm.answered_errors
    assert throttled.status == 429
    assert 2 - 0.05 <= pushed.at - throttled.at < 2 + 1.0
    assert counted(app, "push_retried_total", "fcm") == 1
    assert counted(app, "push_failed_total", "fcm") == 0
    assert standins.fcm.refused == []
