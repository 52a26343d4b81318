"""A consumer runner that handles the deliveries waiting at a moment as one batch.

Where the work is per message but its cost is per round trip (one database transaction, one
lock, one insert), handling what has arrived together divides that cost by the batch size:
under load the batches grow by themselves, and a lone message is a batch of one, so nothing
waits for a batch to fill.

One drain task takes the deliveries in arrival order, at most ``max_batch`` at a time (prefetch
bounds what is waiting anyway). What does not decode, or has a type the queue does not accept,
is dead-lettered alone first. The rest goes to ``handle_batch`` in one call; on success the whole
batch is acked with one ``basic.ack multiple`` (every earlier delivery of the channel is settled
by then, since batches are taken in order). If the batch fails, its deliveries are handled one at
a time through the plain runner's path, so a poison message is retried and dead-lettered by
itself and the others still succeed: ``handle_batch`` must therefore be idempotent for each
message (a unique key in the store), which is why the batch path records nothing in an inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError

from contracts.envelope import Envelope, decode_envelope
from contracts.errors import ContractError
from contracts.topology import topic_matches
from servicekit.amqp.consumer import ConsumerRunner
from servicekit.logs import bound_context, get_logger

_log = get_logger("servicekit.batch_consumer")

HandleBatch = Callable[[Sequence[Envelope[Any]]], Awaitable[None]]


class BatchConsumerRunner[Tx](ConsumerRunner[Tx]):
    """``ConsumerRunner`` whose deliveries are handled a batch at a time by ``handle_batch``;
    ``handle`` (through the inbox) is the one-at-a-time fallback after a failed batch."""

    def __init__(self, *, handle_batch: HandleBatch, max_batch: int = 64, **runner: Any) -> None:
        super().__init__(**runner)
        self._handle_batch = handle_batch
        self._max_batch = max_batch
        self._waiting: list[AbstractIncomingMessage] = []
        self._arrived = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.batches = 0  # handled as one batch, for tests and metrics

    async def start(self) -> None:
        self._drainer = asyncio.create_task(self._drain_forever(), name=f"{self._name}-batches")
        await super().start()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking deliveries, finish those waiting, then close the channel."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._cancel_consumer()
                await self._idle.wait()
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        await super().stop(timeout=0)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._waiting.append(message)
        self._idle.clear()
        self._arrived.set()

    async def _drain_forever(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: len(batch)]
                try:
                    await self._settle_batch(batch)
                except Exception:  # never stop draining; the broker redelivers what is unacked
                    _log.exception("batch_settle_failed", consumer=self._name)
            self._idle.set()

    async def _settle_batch(self, messages: list[AbstractIncomingMessage]) -> None:
        started = time.perf_counter()
        decoded: list[tuple[AbstractIncomingMessage, Envelope[Any]]] = []
        for message in messages:
            try:
                envelope = decode_envelope(message.body)
            except ContractError as error:
                reason = f"undecodable: {error}"
                await self._count(message, await self._dead_letter(message, reason))
                continue
            if not any(topic_matches(pattern, envelope.type) for pattern in self._accepts):
                reason = f"unexpected type {envelope.type!r}"
                await self._count(message, await self._dead_letter(message, reason))
                continue
            decoded.append((message, envelope))
        if not decoded:
            return
        try:
            with bound_context(queue=self._spec.name, batch=len(decoded)):
                async with asyncio.timeout(self._handler_timeout):
                    await self._handle_batch([envelope for _, envelope in decoded])
        except Exception as error:
            _log.warning("batch_failed_one_at_a_time", size=len(decoded), error=repr(error))
            for message, _ in decoded:
                await super()._on_message(message)
            return
        self.batches += 1
        self._metrics.batch_size.labels(self._spec.name).observe(len(decoded))
        await _ack_through(message for message, _ in decoded)
        elapsed = time.perf_counter() - started
        for _ in decoded:
            self._metrics.messages_consumed.labels(self._spec.name, "acked").inc()
            self._metrics.consume_latency.labels(self._spec.name).observe(elapsed)

    async def _count(self, message: AbstractIncomingMessage, outcome: str) -> None:
        self._metrics.messages_consumed.labels(self._spec.name, outcome).inc()


async def _ack_through(messages: Any) -> None:
    """One ``multiple`` ack per channel, of its last delivery: everything before it on that
    channel is settled. A channel that closed meanwhile redelivers instead."""
    last_by_channel: dict[int, AbstractIncomingMessage] = {}
    for message in messages:
        try:
            channel = message.channel
        except ChannelInvalidStateError:
            continue
        last_by_channel[id(channel)] = message
    for message in last_by_channel.values():
        try:
            await message.ack(multiple=True)
        except Exception as error:
            _log.warning("batch_ack_failed", error=repr(error))
