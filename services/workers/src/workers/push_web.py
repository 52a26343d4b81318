"""Web Push (RFC 8030) with ``aes128gcm`` payload encryption (RFC 8291) and VAPID (RFC 8292),
through pywebpush over the workers' aiohttp session.

The push service of the browser that subscribed is named by the subscription's endpoint; only
endpoints on the configured push-service hosts are accepted at registration (``allows``), so
the workers never POST where a client pointed them. ``Topic`` makes a newer push of one
conversation replace an undelivered older one.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid  # type: ignore[import-untyped]
from py_vapid.utils import b64urlencode  # type: ignore[import-untyped]
from pywebpush import WebPushException, webpush_async  # type: ignore[import-untyped]

from workers.config import WebPushSettings
from workers.devices import Device, Platform
from workers.push_sender import Delivered, Gone, Outcome, PushMessage, Retry, by_status

TTL_SECONDS = 24 * 3600


def load_vapid_key(private_key: str) -> Vapid:
    """PEM (its line breaks real, or written ``\\n`` to fit one line of an environment file),
    or the raw 32-byte key in base64url (what ``vapid --gen`` and most guides print)."""
    pem = private_key.replace("\\n", "\n").strip()
    if pem.startswith("-----BEGIN"):
        return Vapid.from_pem(pem.encode() + b"\n")
    return Vapid.from_string(private_key)


def application_server_key(vapid: Vapid) -> str:
    """The public key browsers subscribe with (``applicationServerKey``), base64url."""
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return str(b64urlencode(raw))


class WebPushSender:
    platform: Platform = "webpush"

    def __init__(self, settings: WebPushSettings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._vapid = load_vapid_key(settings.vapid_private_key)
        self._session = session
        self.public_key = application_server_key(self._vapid)

    def allows(self, endpoint: str) -> bool:
        try:
            host = (urlsplit(endpoint).hostname or "").lower()
        except ValueError:  # no URL
            return False
        return bool(host) and any(
            host == allowed or host.endswith("." + allowed)
            for allowed in (h.lower() for h in self._settings.allowed_hosts)
        )

    async def send(self, device: Device, message: PushMessage) -> Outcome:
        data = json.dumps(message.payload(device.previews))
        try:
            await webpush_async(
                subscription_info={"endpoint": device.token, "keys": device.keys},
                data=data,
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._settings.vapid_subject},
                ttl=TTL_SECONDS,
                headers={"Topic": message.collapse_key, "Urgency": "normal"},
                timeout=aiohttp.ClientTimeout(total=10),
                aiohttp_session=self._session,
            )
        except WebPushException as error:
            response = error.response
            if response is None:
                return Retry(str(error)[:200], None)
            status = int(response.status)
            if status in (404, 410):
                return Gone(f"{status}: the subscription expired or was withdrawn")
            return by_status(status, str(response.reason), response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as error:
            return Retry(f"unreachable: {error!r}"[:200], None)
        return Delivered()
