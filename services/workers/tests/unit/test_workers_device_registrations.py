"""Registering push devices on fakes of the device store and the push senders: which platforms
are offered, what address each takes (a token that looks like one, a Web Push subscription on
an allowed push service with its keys), and whose devices one may list and remove."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from servicekit.problems import problem_for
from servicekit.refusals import InvalidInput, NotFound
from servicekit.tokens import AccessClaims
from workers.device_api import RegisterDeviceRequest, WebPushKeys, WebPushSubscription
from workers.device_registrations import DeviceRegistrations
from workers.devices import Device, Platform
from workers.push_sender import Delivered, Outcome, PushMessage, PushSender

APNS = "ab" * 32
P256DH = "B" + "A" * 86
AUTH = "C" * 22
PUSH_HOST = "push.example.net"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class FakeDevices:
    """``workers.ports.Devices``: one device per platform and address."""

    devices: dict[tuple[str, str], Device] = field(default_factory=dict)

    async def register(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        platform: Platform,
        token: str,
        keys: dict[str, str],
        previews: bool,
    ) -> Device:
        earlier = self.devices.get((platform, token))
        device = Device(
            id=earlier.id if earlier else uuid.uuid4(),
            user_id=user_id,
            session_id=session_id,
            platform=platform,
            token=token,
            keys=keys,
            previews=previews,
            created_at=earlier.created_at if earlier else NOW,
        )
        self.devices[platform, token] = device
        return device

    async def of_user(self, user_id: uuid.UUID) -> list[Device]:
        return [d for d in self.devices.values() if d.user_id == user_id]

    async def remove(self, user_id: uuid.UUID, device_id: uuid.UUID) -> bool:
        for key, device in list(self.devices.items()):
            if device.id == device_id and device.user_id == user_id:
                del self.devices[key]
                return True
        return False


class FakeTokenSender:
    def __init__(self, platform: Platform) -> None:
        self.platform: Platform = platform

    async def send(self, device: Device, message: PushMessage) -> Outcome:
        return Delivered()


class FakeWebPushSender(FakeTokenSender):
    """``workers.ports.WebPushEndpoints``: pushes only to ``PUSH_HOST`` and its subdomains."""

    public_key = "BPublicKey"

    def __init__(self) -> None:
        super().__init__("webpush")

    def allows(self, endpoint: str) -> bool:
        host = endpoint.split("://", 1)[-1].split("/", 1)[0]
        return host == PUSH_HOST or host.endswith("." + PUSH_HOST)


def claims(user_id: uuid.UUID | None = None) -> AccessClaims:
    return AccessClaims(
        user_id=user_id or uuid.uuid4(),
        session_id=uuid.uuid4(),
        token_id=uuid.uuid4(),
        issued_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
    )


def registrations(
    *platforms: Platform, allow_plain_http: bool = False
) -> tuple[DeviceRegistrations, FakeDevices]:
    senders: dict[Platform, PushSender] = {
        p: FakeWebPushSender() if p == "webpush" else FakeTokenSender(p) for p in platforms
    }
    store = FakeDevices()
    return DeviceRegistrations(store, senders, allow_plain_http=allow_plain_http), store


def web_push(endpoint: str, p256dh: str = P256DH, auth: str = AUTH) -> RegisterDeviceRequest:
    return RegisterDeviceRequest(
        platform="webpush",
        subscription=WebPushSubscription(
            endpoint=endpoint, keys=WebPushKeys(p256dh=p256dh, auth=auth)
        ),
    )


def fields(refusal: InvalidInput) -> list[str]:
    return [error.field for error in refusal.errors or []]


def test_the_config_offers_the_configured_platforms_and_the_web_push_key() -> None:
    with_web, _ = registrations("webpush", "apns")
    without_web, _ = registrations("fcm")

    assert with_web.config().platforms == ["apns", "webpush"]
    assert with_web.config().web_push_public_key == "BPublicKey"
    assert without_web.config().web_push_public_key is None


async def test_a_platform_this_server_has_no_credentials_for_is_refused() -> None:
    service, store = registrations("fcm")

    with pytest.raises(InvalidInput) as refused:
        await service.register(claims(), RegisterDeviceRequest(platform="apns", token=APNS))

    answer = problem_for(refused.value)
    assert (answer.status, answer.title) == (422, "Validation failed")
    assert [(e.field, e.message) for e in answer.errors or []] == [
        ("platform", "apns is not enabled on this server")
    ]
    assert store.devices == {}


@pytest.mark.parametrize(
    ("platform", "token"),
    [("apns", None), ("apns", "not-hex" * 10), ("apns", "ab" * 10), ("fcm", "has space")],
    ids=["no token", "not hex", "too short", "not printable ASCII"],
)
async def test_a_device_token_must_look_like_its_platforms(
    platform: Platform, token: str | None
) -> None:
    service, _ = registrations("apns", "fcm")

    with pytest.raises(InvalidInput) as refused:
        await service.register(claims(), RegisterDeviceRequest(platform=platform, token=token))

    assert fields(refused.value) == ["token"]


async def test_a_web_push_device_needs_its_subscription() -> None:
    service, _ = registrations("webpush")

    with pytest.raises(InvalidInput) as refused:
        await service.register(claims(), RegisterDeviceRequest(platform="webpush", token="x"))

    assert fields(refused.value) == ["subscription"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://evil.example.org/push/1",
        f"http://{PUSH_HOST}/push/1",
        f"ftp://{PUSH_HOST}/push/1",
        "https://[",
    ],
    ids=["a host that is no push service", "plain http", "another scheme", "no URL"],
)
async def test_a_subscription_must_name_an_allowed_push_services_https_endpoint(
    endpoint: str,
) -> None:
    service, _ = registrations("webpush")

    with pytest.raises(InvalidInput) as refused:
        await service.register(claims(), web_push(endpoint))

    assert fields(refused.value) == ["subscription.endpoint"]


async def test_plain_http_is_allowed_only_outside_production() -> None:
    service, store = registrations("webpush", allow_plain_http=True)

    await service.register(claims(), web_push(f"http://{PUSH_HOST}/push/1"))

    assert len(store.devices) == 1


async def test_each_bad_key_of_a_subscription_is_named() -> None:
    service, _ = registrations("webpush")

    with pytest.raises(InvalidInput) as refused:
        await service.register(
            claims(), web_push(f"https://fcm.{PUSH_HOST}/1", p256dh="short", auth="x" * 30)
        )

    assert fields(refused.value) == ["subscription.keys.p256dh", "subscription.keys.auth"]


async def test_a_web_push_device_is_stored_with_its_keys_and_shown_by_endpoint() -> None:
    service, store = registrations("webpush")
    caller = claims()
    endpoint = f"https://updates.{PUSH_HOST}/push/abc"

    view = await service.register(caller, web_push(endpoint))

    [device] = store.devices.values()
    assert (device.token, device.keys) == (endpoint, {"p256dh": P256DH, "auth": AUTH})
    assert (view.endpoint, view.token, view.current) == (endpoint, None, True)


async def test_a_user_lists_their_own_devices_marking_this_sessions() -> None:
    service, _ = registrations("apns", "fcm")
    phone, laptop = claims(), claims()
    laptop = AccessClaims(
        user_id=phone.user_id,
        session_id=laptop.session_id,
        token_id=laptop.token_id,
        issued_at=NOW,
        expires_at=laptop.expires_at,
    )
    await service.register(phone, RegisterDeviceRequest(platform="apns", token=APNS))
    await service.register(laptop, RegisterDeviceRequest(platform="fcm", token="fcm-token"))
    await service.register(claims(), RegisterDeviceRequest(platform="fcm", token="other"))

    listed = (await service.devices(phone)).devices

    assert [(d.platform, d.token, d.current) for d in listed] == [
        ("apns", APNS, True),
        ("fcm", "fcm-token", False),
    ]


async def test_only_the_owner_removes_a_device_and_only_once() -> None:
    service, store = registrations("apns")
    owner = claims()
    view = await service.register(owner, RegisterDeviceRequest(platform="apns", token=APNS))

    with pytest.raises(NotFound, match="No such device"):
        await service.remove(claims(), view.id)
    await service.remove(owner, view.id)
    with pytest.raises(NotFound):
        await service.remove(owner, view.id)

    assert store.devices == {}
