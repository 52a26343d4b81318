"""Apple Push Notification service over HTTP/2 (httpx), with token-based (``.p8``) auth.

The provider token is an ES256 JWT (``kid`` the key id, ``iss`` the team id) reused for 50
minutes (Apple refuses one older than an hour and one renewed more often than every 20).
``410 Unregistered`` means the app is gone from the device: the device is removed. An
expired or refused provider token is renewed and the send retried.
"""

from __future__ import annotations

import json
import time

import httpx
import jwt

from workers.config import ApnsSettings
from workers.devices import Device, Platform
from workers.push_sender import Delivered, Gone, Outcome, PushMessage, Retry, by_status

TOKEN_REUSE_SECONDS = 50 * 60
EXPIRATION_SECONDS = 24 * 3600


class ApnsSender:
    platform: Platform = "apns"

    def __init__(self, settings: ApnsSettings, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        self._base = settings.url.rstrip("/")
        self._token: str | None = None
        self._token_at = 0.0

    async def send(self, device: Device, message: PushMessage) -> Outcome:
        payload = message.payload(device.previews)
        alert = {"title": "New mention" if message.kind == "mention" else "New message"}
        if device.previews:
            alert["body"] = message.preview
        body = {
            "aps": {"alert": alert, "thread-id": str(message.conversation_id), "sound": "default"},
            **payload,
        }
        headers = {
            "authorization": f"bearer {self._provider_token()}",
            "apns-topic": self._settings.topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-collapse-id": message.collapse_key,
            "apns-expiration": str(int(time.time()) + EXPIRATION_SECONDS),
        }
        try:
            response = await self._client.post(
                f"{self._base}/3/device/{device.token}",
                content=json.dumps(body).encode(),
                headers=headers,
            )
        except httpx.HTTPError as error:
            return Retry(f"unreachable: {error!r}"[:200], None)
        if response.status_code == 200:
            return Delivered()
        reason = _reason(response)
        if response.status_code == 410 or reason == "Unregistered":
            return Gone(f"{response.status_code} {reason}")
        if reason in ("ExpiredProviderToken", "InvalidProviderToken"):
            self._token = None
            return Retry(f"{response.status_code} {reason}", 0.0)
        return by_status(response.status_code, reason, response.headers.get("retry-after"))

    def _provider_token(self) -> str:
        now = time.time()
        if self._token is None or now - self._token_at > TOKEN_REUSE_SECONDS:
            self._token = jwt.encode(
                {"iss": self._settings.team_id, "iat": int(now)},
                self._settings.private_key,
                algorithm="ES256",
                headers={"kid": self._settings.key_id},
            )
            self._token_at = now
        return self._token


def _reason(response: httpx.Response) -> str:
    try:
        answer = response.json()
    except ValueError:
        return response.reason_phrase
    return str(answer.get("reason") or response.reason_phrase) if isinstance(answer, dict) else ""
