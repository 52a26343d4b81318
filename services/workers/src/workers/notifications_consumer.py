"""The consumer of ``notifications.queue``: its runner, then its announcement pacer.

At shutdown the runner stops first, so no handler adds to the pacer any more, and then the
pacer sends what it still holds (``AnnouncementPacer.close``) while the publisher is open.
"""

from __future__ import annotations

from servicekit.messaging import Consumer
from workers.announcements import AnnouncementPacer


class NotificationsConsumer:
    """The notifications runner, stopped before the pacer sends what it still holds."""

    def __init__(self, runner: Consumer, announcements: AnnouncementPacer) -> None:
        self._runner = runner
        self._announcements = announcements

    async def start(self) -> None:
        await self._runner.start()

    async def stop(self, timeout: float = 10.0) -> None:
        await self._runner.stop(timeout)
        await self._announcements.close()
