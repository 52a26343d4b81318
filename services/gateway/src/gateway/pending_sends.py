"""Acks waiting for chat to store a message: ``message:send`` resolves when the
``message.created`` with the same sender and clientMessageId comes back over the bus, or fails
at once when a ``message.refused`` does."""

from __future__ import annotations

import asyncio
from uuid import UUID

from contracts.events import MessageRefused, MessageView

Key = tuple[UUID, str]


class SendRefusedError(Exception):
    """What a waiting ``message:send`` gets when chat refused the message."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class PendingSends:
    def __init__(self) -> None:
        self._waiting: dict[Key, asyncio.Future[MessageView]] = {}

    def expect(self, sender_id: UUID, client_message_id: str) -> asyncio.Future[MessageView]:
        """A future for the stored message; a resend while waiting shares the first one."""
        key = (sender_id, client_message_id)
        future = self._waiting.get(key)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._waiting[key] = future
        return future

    def stored(self, message: MessageView) -> None:
        if message.client_message_id is None:
            return
        future = self._waiting.pop((message.sender_id, message.client_message_id), None)
        if future is not None and not future.done():
            future.set_result(message)

    def refused(self, refusal: MessageRefused) -> None:
        """Chat stored nothing: the waiting ack fails with its reason."""
        future = self._waiting.pop((refusal.sender_id, refusal.client_message_id), None)
        if future is not None and not future.done():
            future.set_exception(SendRefusedError(refusal.code, refusal.detail))

    def forget(self, sender_id: UUID, client_message_id: str) -> None:
        self._waiting.pop((sender_id, client_message_id), None)

    def forget_later(
        self,
        sender_id: UUID,
        client_message_id: str,
        future: asyncio.Future[MessageView],
        delay: float,
    ) -> None:
        """After an ack timed out, keep waiting a while (a resend may still be answered by a late
        ``message.created``), then drop the wait so unanswered sends do not pile up."""

        def drop() -> None:
            key = (sender_id, client_message_id)
            if self._waiting.get(key) is future:
                del self._waiting[key]

        asyncio.get_running_loop().call_later(delay, drop)
