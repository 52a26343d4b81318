"""Firebase Cloud Messaging, HTTP v1 API, with an OAuth2 access token of a service account.

The token comes from the service account's ``token_uri`` for a JWT assertion signed with its
RS256 key (Google's two-legged OAuth flow), and is reused until a minute before it expires.
A token FCM refuses (401) is dropped, and the send retried with a new one. ``UNREGISTERED``
means the app was uninstalled or the token rotated: the device is removed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import jwt

from workers.config import FcmSettings
from workers.devices import Device, Platform
from workers.push_sender import Delivered, Failed, Gone, Outcome, PushMessage, Retry, by_status

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOKEN_LIFETIME = 3600


class FcmSender:
    platform: Platform = "fcm"

    def __init__(self, settings: FcmSettings, session: aiohttp.ClientSession) -> None:
        account = json.loads(settings.service_account)
        self._project = str(account["project_id"])
        self._email = str(account["client_email"])
        self._key = str(account["private_key"])
        self._key_id = account.get("private_key_id")
        self._token_uri = str(account["token_uri"])
        self._url = f"{settings.url.rstrip('/')}/v1/projects/{self._project}/messages:send"
        self._session = session
        self._token: str | None = None
        self._token_until = 0.0

    async def send(self, device: Device, message: PushMessage) -> Outcome:
        try:
            token = await self._access_token()
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as error:
            return Retry(f"no access token: {error!r}"[:200], None)
        body = {
            "message": {
                "token": device.token,
                "data": {k: str(v) for k, v in message.payload(device.previews).items()},
                "android": {"collapse_key": message.collapse_key, "priority": "high"},
            }
        }
        try:
            async with self._session.post(
                self._url,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                if response.status == 200:
                    return Delivered()
                outcome = _outcome(response, await _json(response))
        except (aiohttp.ClientError, TimeoutError) as error:
            return Retry(f"unreachable: {error!r}"[:200], None)
        if response.status == 401:
            self._token = None  # refused: the next try asks for a new one
        return outcome

    async def _access_token(self) -> str:
        now = time.time()
        if self._token is not None and now < self._token_until:
            return self._token
        assertion = jwt.encode(
            {
                "iss": self._email,
                "scope": SCOPE,
                "aud": self._token_uri,
                "iat": int(now),
                "exp": int(now) + TOKEN_LIFETIME,
            },
            self._key,
            algorithm="RS256",
            headers={"kid": self._key_id} if self._key_id else None,
        )
        async with self._session.post(
            self._token_uri,
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            },
            timeout=aiohttp.ClientTimeout(total=10),
        ) as response:
            response.raise_for_status()
            granted = await response.json()
        self._token = str(granted["access_token"])
        self._token_until = now + float(granted.get("expires_in", TOKEN_LIFETIME)) - 60
        return self._token


def _outcome(response: aiohttp.ClientResponse, answer: dict[str, Any]) -> Outcome:
    code = _error_code(answer)
    if code == "UNREGISTERED":
        return Gone("UNREGISTERED: the app was removed or the token replaced")
    if response.status == 401:
        return Retry("401: access token refused", 0.0)
    outcome = by_status(response.status, response.reason or "", response.headers.get("Retry-After"))
    return Failed(f"{outcome.reason}: {code or '?'}") if isinstance(outcome, Failed) else outcome


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return {}
    return body if isinstance(body, dict) else {}


def _error_code(answer: dict[str, Any]) -> str | None:
    """FCM's ``errorCode`` from ``error.details`` (``UNREGISTERED``, ``QUOTA_EXCEEDED``...)."""
    error = answer.get("error")
    if not isinstance(error, dict):
        return None
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    status = error.get("status")
    return str(status) if status else None
