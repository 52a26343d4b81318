"""HTTP side of push devices: the JSON bodies and the handlers. No Mongo here."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from aiohttp import web
from msgspec import Meta

from servicekit.http_app import json_response
from servicekit.request_body import Body, path_id, read_json
from servicekit.tokens import authenticate

if TYPE_CHECKING:
    from workers.device_registrations import DeviceRegistrations

PlatformName = Literal["webpush", "fcm", "apns"]


class WebPushKeys(Body):
    p256dh: Annotated[str, Meta(min_length=1, max_length=200)]
    auth: Annotated[str, Meta(min_length=1, max_length=100)]


class WebPushSubscription(Body):
    """The browser's ``PushSubscription.toJSON()``."""

    endpoint: Annotated[str, Meta(min_length=1, max_length=2048)]
    keys: WebPushKeys
    expiration_time: int | None = None


APNS_TOKEN = re.compile(r"[0-9a-fA-F]{64,200}")
FCM_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
# base64url of a P-256 public key (65 bytes) and of the 16-byte auth secret, padded or not
P256DH = re.compile(r"[A-Za-z0-9_-]{87}=?")
AUTH_SECRET = re.compile(r"[A-Za-z0-9_-]{22}(?:==)?")


class RegisterDeviceRequest(Body):
    platform: PlatformName
    token: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None
    """The FCM registration token or the APNs device token (hex)."""
    subscription: WebPushSubscription | None = None
    """Web Push only."""
    previews: bool = False
    """Whether pushes to this device may show the message text."""


def _token_of(platform: str, token: re.Pattern[str]) -> dict[str, object]:
    return {
        "required": ["platform", "token"],
        "properties": {
            "platform": {"const": platform},
            "token": {"type": "string", "pattern": f"^{token.pattern}$"},
        },
    }


RegisterDeviceBody = Annotated[
    RegisterDeviceRequest,
    Meta(
        extra_json_schema={
            "description": "An APNs or FCM device token, or a Web Push subscription whose "
            "endpoint is on a push service this server delivers to",
            "oneOf": [
                _token_of("apns", APNS_TOKEN),
                _token_of("fcm", FCM_TOKEN),
                {
                    "required": ["platform", "subscription"],
                    "properties": {
                        "platform": {"const": "webpush"},
                        "subscription": {
                            "type": "object",
                            "properties": {
                                "endpoint": {"type": "string", "pattern": "^https?://[^/?#]+"},
                                "keys": {
                                    "type": "object",
                                    "properties": {
                                        "p256dh": {"pattern": f"^{P256DH.pattern}$"},
                                        "auth": {"pattern": f"^{AUTH_SECRET.pattern}$"},
                                    },
                                },
                            },
                        },
                    },
                },
            ],
        }
    ),
]
"""What the registration route documents: the address each platform takes."""


class DeviceView(Body):
    id: uuid.UUID
    platform: PlatformName
    token: str | None
    endpoint: str | None
    previews: bool
    created_at: datetime
    current: bool
    """Registered by the session of the token that asked."""


class DeviceList(Body):
    devices: list[DeviceView]


class PushConfig(Body):
    """What a client needs to register a device here."""

    platforms: list[PlatformName]
    web_push_public_key: str | None
    """The VAPID public key (base64url): the ``applicationServerKey`` to subscribe with."""


DEVICE_REGISTRATIONS: web.AppKey[DeviceRegistrations] = web.AppKey("device_registrations")


async def push_config(request: web.Request) -> web.Response:
    await authenticate(request)
    return json_response(request.app[DEVICE_REGISTRATIONS].config())


async def register_device(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    body = await read_json(request, RegisterDeviceRequest)
    device = await request.app[DEVICE_REGISTRATIONS].register(claims, body)
    return json_response(device, status=201)


async def list_devices(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    return json_response(await request.app[DEVICE_REGISTRATIONS].devices(claims))


async def remove_device(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    device_id = path_id(request, "device_id", "No such device")
    await request.app[DEVICE_REGISTRATIONS].remove(claims, device_id)
    return web.Response(status=204)
