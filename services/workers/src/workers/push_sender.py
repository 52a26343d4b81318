"""The port every push platform is reached through, and what a send can come to.

An adapter (``push_web``, ``push_fcm``, ``push_apns``) turns one ``PushMessage`` into its
platform's request and reads the answer as one of four outcomes: delivered; gone (the service
says the device no longer exists: it is removed); retry (429 or 5xx: sent again after the wait
the service asked for); failed (anything else: given up, counted).
"""

from __future__ import annotations

import email.utils
import time
import uuid
from dataclasses import dataclass
from typing import Literal, Protocol

from workers.devices import Device, Platform


@dataclass(frozen=True, slots=True)
class PushMessage:
    notification_id: uuid.UUID
    conversation_id: uuid.UUID
    kind: Literal["message", "mention"]
    count: int
    """Messages the notification stands for (the latest count of a burst)."""
    preview: str
    """Shown only on devices whose user allowed previews."""

    def payload(self, with_preview: bool) -> dict[str, str | int]:
        """What every platform carries, flat (FCM data values must be strings: adapters
        convert)."""
        body: dict[str, str | int] = {
            "notificationId": str(self.notification_id),
            "conversationId": str(self.conversation_id),
            "kind": self.kind,
            "count": self.count,
        }
        if with_preview:
            body["preview"] = self.preview
        return body

    @property
    def collapse_key(self) -> str:
        """One per conversation, 32 characters: a newer push replaces a pending older one."""
        return self.conversation_id.hex


@dataclass(frozen=True, slots=True)
class Delivered:
    pass


@dataclass(frozen=True, slots=True)
class Gone:
    reason: str


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str
    after_seconds: float | None


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str


Outcome = Delivered | Gone | Retry | Failed


class PushSender(Protocol):
    platform: Platform

    async def send(self, device: Device, message: PushMessage) -> Outcome: ...


def retry_after(header: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or odd."""
    if not header:
        return None
    if header.strip().isdigit():
        return float(header.strip())
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def by_status(status: int, reason: str, retry_after_header: str | None) -> Outcome:
    """The outcome of a status with no platform-specific meaning."""
    if 200 <= status < 300:
        return Delivered()
    if status == 429 or status >= 500:
        return Retry(f"{status} {reason}", retry_after(retry_after_header))
    return Failed(f"{status} {reason}")
