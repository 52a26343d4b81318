"""Acks a consumer's deliveries a batch at a time: one ``basic.ack multiple`` per loop turn.

A consumer that acks each delivery writes one AMQP frame per message; at a fan-out rate of
hundreds of events a second that frame is a real share of the consumer's CPU. Here a handled
delivery is only marked done; once per event-loop turn the longest run of done deliveries from
the oldest one is acked with a single ``multiple=True`` ack of its last tag. A delivery still
being handled holds back the acks of those after it, so nothing is acked before it is handled,
and prefetch keeps bounding what is in flight.

Delivery tags belong to one channel: after a reconnect the broker redelivers what was unacked
and numbers it anew, so the deliveries of a previous channel are forgotten, never acked on the
new one (an unknown tag would close the channel).
"""

from __future__ import annotations

import asyncio
import bisect

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError

from servicekit.logs import get_logger

_log = get_logger("servicekit.batched_acks")


class BatchedAcks:
    def __init__(self) -> None:
        self._channel: object | None = None
        self._tags: list[int] = []  # received, not acked yet, ascending
        self._done: dict[int, AbstractIncomingMessage] = {}
        self._flush_scheduled = False
        self._flushing: set[asyncio.Task[None]] = set()
        self.frames = 0  # acks written, for tests and metrics

    def received(self, message: AbstractIncomingMessage) -> None:
        """Called when handling of ``message`` starts."""
        channel = _channel_of(message)
        if channel is None:
            return
        if channel is not self._channel:
            self._channel = channel
            self._tags.clear()
            self._done.clear()
        bisect.insort(self._tags, _tag(message))

    def done(self, message: AbstractIncomingMessage) -> None:
        """Called when ``message`` is handled: it is acked with the batch it completes."""
        channel = _channel_of(message)
        if channel is None or channel is not self._channel:
            return  # from a channel that is gone: the broker redelivers it
        self._done[_tag(message)] = message
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        last: AbstractIncomingMessage | None = None
        handled = 0
        for tag in self._tags:
            message = self._done.pop(tag, None)
            if message is None:
                break
            last = message
            handled += 1
        if last is None:
            return
        del self._tags[:handled]
        task = asyncio.get_running_loop().create_task(self._ack(last))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _ack(self, last: AbstractIncomingMessage) -> None:
        try:
            await last.ack(multiple=True)
            self.frames += 1
        except Exception as error:  # the channel closed: the broker redelivers what it holds
            _log.warning("batched_ack_failed", error=repr(error))

    async def drain(self) -> None:
        """Wait for the acks already decided (before closing the channel)."""
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)


def _tag(message: AbstractIncomingMessage) -> int:
    tag = message.delivery_tag
    if tag is None:
        raise ValueError("a message consumed with no_ack has nothing to ack")
    return tag


def _channel_of(message: AbstractIncomingMessage) -> object | None:
    try:
        return message.channel
    except ChannelInvalidStateError:
        return None
