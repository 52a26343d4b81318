"""Pushing notifications to devices: the ``push.queue`` consumer.

Each ``notification.created`` (already paced by ``workers.announcements``: a burst in one
conversation is one announcement per interval with the latest count) is pushed to every device
of its recipient unless the recipient is looking at that conversation on a live socket. Each
device is sent to through its platform's ``PushSender``; a 429 or 5xx is sent again after the
wait the service asked for (``Retry-After``, at most ``MAX_RETRY_WAIT`` seconds; else 1, 2,
4... seconds), up to ``PushSettings.max_attempts`` sends; a device the service calls gone is
removed. ``session.revoked`` removes the devices that session registered, ``user.deleted``
all of the user's.

Delivery is at least once: a redelivered announcement may push again, which the platforms'
collapse keys (one per conversation) fold into the same notification on the device.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from contracts.envelope import Envelope
from contracts.events import NotificationCreated, SessionRevoked, UserDeleted
from servicekit.logs import get_logger
from servicekit.presence_keys import Attention, PresenceReader
from workers.devices import Device, DeviceStore, Platform
from workers.push_sender import Delivered, Failed, Gone, PushMessage, PushSender, Retry

MAX_RETRY_WAIT = 30.0

_log = get_logger("workers.push")


class PushMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["platform"]
        self.sent = Counter(
            "push_sent_total", "Pushes a platform accepted", labels, registry=registry
        )
        self.failed = Counter(
            "push_failed_total",
            "Pushes given up (refused, or retries spent)",
            labels,
            registry=registry,
        )
        self.retried = Counter(
            "push_retried_total", "Pushes sent again after a 429 or 5xx", labels, registry=registry
        )
        self.removed = Counter(
            "push_devices_removed_total",
            "Devices removed because their platform said they are gone",
            labels,
            registry=registry,
        )


class PushDelivery:
    def __init__(
        self,
        *,
        devices: DeviceStore,
        presence: PresenceReader,
        senders: Mapping[Platform, PushSender],
        max_attempts: int,
        metrics: PushMetrics,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._devices = devices
        self._presence = presence
        self._senders = senders
        self._max_attempts = max_attempts
        self._metrics = metrics
        self._sleep = sleep

    async def __call__(self, envelope: Envelope[Any], _: None) -> None:
        match envelope.data:
            case NotificationCreated() as notification:
                await self._push(notification)
            case SessionRevoked(session_id=session_id):
                await self._devices.remove_session(session_id)
            case UserDeleted(user_id=user_id):
                await self._devices.remove_user(user_id)
            case _:
                _log.info("push_event_ignored", event_type=envelope.type)

    async def _push(self, notification: NotificationCreated) -> None:
        recipient = notification.recipient_id
        attention = await self._presence.attention([recipient], notification.conversation_id)
        if attention.get(recipient) == Attention.VIEWING:
            return
        devices = [d for d in await self._devices.of_user(recipient) if d.platform in self._senders]
        if not devices:
            return
        message = PushMessage(
            notification_id=notification.notification_id,
            conversation_id=notification.conversation_id,
            kind=notification.kind,
            count=notification.count,
            preview=notification.preview,
        )
        await asyncio.gather(*(self._deliver(device, message) for device in devices))

    async def _deliver(self, device: Device, message: PushMessage) -> None:
        sender = self._senders[device.platform]
        platform = device.platform
        for attempt in range(1, self._max_attempts + 1):
            outcome = await sender.send(device, message)
            match outcome:
                case Delivered():
                    self._metrics.sent.labels(platform).inc()
                    return
                case Gone(reason=reason):
                    await self._devices.remove_gone(device.id)
                    self._metrics.removed.labels(platform).inc()
                    _log.info("push_device_removed", platform=platform, reason=reason)
                    return
                case Failed(reason=reason):
                    self._metrics.failed.labels(platform).inc()
                    _log.warning("push_failed", platform=platform, reason=reason)
                    return
                case Retry(reason=reason, after_seconds=after):
                    if attempt == self._max_attempts:
                        self._metrics.failed.labels(platform).inc()
                        _log.warning("push_retries_spent", platform=platform, reason=reason)
                        return
                    self._metrics.retried.labels(platform).inc()
                    wait = float(2 ** (attempt - 1)) if after is None else after
                    await self._sleep(min(wait, MAX_RETRY_WAIT))
