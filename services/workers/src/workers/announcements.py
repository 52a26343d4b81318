"""Paces ``notification.created``: at most one announcement per notification per interval.

In a busy group every message raises the unread count of every member who is not looking, and
each announcement is a bus event that every gateway instance decodes. A notification's first
announcement goes out at once; those that follow within ``interval`` seconds fold into one, sent
at the end of the interval with the latest count. So a burst costs one push per member per
interval, not one per message, and the last push always carries the final count.

The pacing is per worker process and in memory: a process that stops sends what it holds
(``flush``); one that crashes loses at most an interval of pushes, never a notification (the
notifications API has them all).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from uuid import UUID

from contracts.envelope import Envelope
from contracts.events import NotificationCreated
from servicekit.logs import get_logger

_log = get_logger("workers.announcements")

Publish = Callable[[list[Envelope[NotificationCreated]]], Awaitable[None]]
_FORGET_AFTER_INTERVALS = 4


class AnnouncementPacer:
    def __init__(
        self,
        publish: Publish,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self._interval = interval
        self._clock = clock
        self._last_sent: dict[UUID, float] = {}
        self._held: dict[UUID, Envelope[NotificationCreated]] = {}
        self._announced: dict[UUID, int] = {}
        self._flusher: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def announce(self, envelopes: list[Envelope[NotificationCreated]]) -> None:
        """Send now what is due; hold the rest (the highest count per notification) for later."""
        now = self._clock()
        due = []
        for envelope in envelopes:
            key = envelope.data.notification_id
            if envelope.data.count <= self._announced.get(key, 0):
                continue  # handlers run concurrently: a newer count went out already
            last = self._last_sent.get(key)
            if key not in self._held and (last is None or now - last >= self._interval):
                self._last_sent[key] = now
                due.append(envelope)
            elif (held := self._held.get(key)) is None or envelope.data.count >= held.data.count:
                # Handlers run concurrently: the later arrival is not always the newer count.
                self._held[key] = envelope
        if self._held and self._flusher is None:
            self._flusher = asyncio.get_running_loop().call_later(self._interval, self._tick)
        if due:
            await self._publish(due)
            self._mark_announced(due)

    def _tick(self) -> None:
        self._flusher = None
        task = asyncio.get_running_loop().create_task(self.flush(due_only=True))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self, *, due_only: bool = False) -> None:
        """Send the held announcements (only those whose interval has passed, if ``due_only``)."""
        now = self._clock()
        sending = [
            key
            for key in self._held
            if not due_only or now - self._last_sent.get(key, now) >= self._interval
        ]
        batch = [self._held.pop(key) for key in sending]
        for key in sending:
            self._last_sent[key] = now
        self._forget_quiet(now)
        if self._held and self._flusher is None:
            self._flusher = asyncio.get_running_loop().call_later(self._interval, self._tick)
        if batch:
            try:
                await self._publish(batch)
            except Exception:  # a push is best effort; the notification itself is stored
                _log.warning("notification_announcements_lost", count=len(batch))
            else:
                self._mark_announced(batch)

    def _mark_announced(self, batch: list[Envelope[NotificationCreated]]) -> None:
        """Remember the highest count published per notification (only once it is published, so
        a redelivery after a failed publish is announced)."""
        for envelope in batch:
            key = envelope.data.notification_id
            self._announced[key] = max(envelope.data.count, self._announced.get(key, 0))

    async def close(self) -> None:
        """Send everything held, now; called when the consumer stops."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        for task in list(self._flushing):
            with contextlib.suppress(Exception):
                await task
        await self.flush()

    def _forget_quiet(self, now: float) -> None:
        horizon = self._interval * _FORGET_AFTER_INTERVALS
        quiet = [
            k for k, at in self._last_sent.items() if now - at > horizon and k not in self._held
        ]
        for key in quiet:
            del self._last_sent[key]
            self._announced.pop(key, None)
