"""The consumer runner: everything a queue consumer needs except its decision.

A consumer is one function ``handle(envelope, tx)``. The runner owns prefetch, strict decoding
with the contract types, idempotency by envelope id (through an :class:`~servicekit.inbox.Inbox`),
bounded retries through the queue's ``.retry`` queue, dead-lettering with the reason, log context
and metrics. A message that cannot be decoded goes to the dead-letter queue at once: retrying it
could never help, and it must never crash-loop the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from contracts.envelope import Envelope, decode_envelope
from contracts.errors import ContractError
from contracts.names import DEAD_LETTER_EXCHANGE, retry_queue
from contracts.topology import QueueSpec, topic_matches
from servicekit.amqp.publisher import ConfirmedPublisher, HeaderValue, OutgoingMessage
from servicekit.amqp.topology import declare_exchanges, declare_work_queue
from servicekit.inbox import Inbox
from servicekit.logs import bound_context, get_logger
from servicekit.metrics import ServiceMetrics
from servicekit.settings import AmqpSettings
from servicekit.unavailable import is_unavailable

RETRY_COUNT_HEADER = "x-retry-count"
REASON_HEADER = "x-failure-reason"

_log = get_logger("servicekit.consumer")


class ConsumerRunner[Tx]:
    def __init__(
        self,
        *,
        name: str,
        queue: QueueSpec,
        handle: Callable[[Envelope[Any], Tx], Awaitable[None]],
        inbox: Inbox[Tx],
        connection: AbstractRobustConnection,
        publisher: ConfirmedPublisher,
        settings: AmqpSettings,
        metrics: ServiceMetrics,
        accepts: frozenset[str] | None = None,
        handler_timeout: float = 30.0,
    ) -> None:
        self._name = name
        self._spec = queue
        self._handle = handle
        self._inbox = inbox
        self._connection = connection
        self._publisher = publisher
        self._settings = settings
        self._metrics = metrics
        # Topic patterns (``user.*``): what this queue's bindings route here, unless narrowed.
        self._accepts = accepts if accepts is not None else frozenset(queue.binding_keys)
        self._handler_timeout = handler_timeout
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    @property
    def queue_name(self) -> str:
        return self._spec.name

    async def start(self) -> None:
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self._settings.prefetch)
        await declare_exchanges(channel)
        # The declared (robust) queue is what the channel restores, consumer included, after
        # a reconnect; a queue looked up without declaring would silently stay cancelled.
        self._queue = await declare_work_queue(channel, self._spec)
        self._consumer_tag = await self._queue.consume(self._on_message, no_ack=False)
        self._channel = channel
        _log.info("consumer_started", consumer=self._name, queue=self._spec.name)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages, let those in hand finish, then close the channel.

        A broker that is already gone must not stop the rest of a shutdown: what is unacked is
        redelivered to the next consumer anyway.
        """
        await self._cancel_consumer()
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=timeout)
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def _cancel_consumer(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            tag, self._consumer_tag = self._consumer_tag, None
            try:
                await self._queue.cancel(tag)
            except Exception as error:
                _log.warning("consumer_cancel_failed", queue=self._spec.name, error=repr(error))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        started = time.perf_counter()
        try:
            with bound_context(queue=self._spec.name, message_id=message.message_id):
                outcome = await self._settle(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)
        self._metrics.messages_consumed.labels(self._spec.name, outcome).inc()
        self._metrics.consume_latency.labels(self._spec.name).observe(time.perf_counter() - started)

    async def _settle(self, message: AbstractIncomingMessage) -> str:
        try:
            envelope = decode_envelope(message.body)
        except ContractError as error:
            return await self._dead_letter(message, f"undecodable: {error}")
        if not any(topic_matches(pattern, envelope.type) for pattern in self._accepts):
            return await self._dead_letter(message, f"unexpected type {envelope.type!r}")
        with bound_context(trace_id=envelope.trace_id, event_type=envelope.type):
            try:
                async with asyncio.timeout(self._handler_timeout):
                    fresh = await self._inbox.apply_once(
                        self._name, envelope.id, lambda tx: self._handle(envelope, tx)
                    )
            except Exception as error:
                return await self._retry_or_dead_letter(message, error)
            await message.ack()
            return "acked" if fresh else "duplicate"

    async def _retry_or_dead_letter(
        self, message: AbstractIncomingMessage, error: Exception
    ) -> str:
        attempts = _retry_count(message)
        if is_unavailable(error):
            # A store is down: says nothing of this message, so no retry is spent on it.
            _log.warning("message_retry_store_unavailable", attempt=attempts, error=repr(error))
            await self._forward(
                message,
                "",
                retry_queue(self._spec.name),
                {RETRY_COUNT_HEADER: attempts},
                expiration_ms=self._settings.retry_delay_ms,
            )
            return "retried"
        if attempts >= self._settings.max_retries:
            return await self._dead_letter(message, f"failed {attempts + 1} times: {error!r}")
        _log.warning("message_retry", attempt=attempts + 1, error=repr(error))
        await self._forward(
            message,
            "",
            retry_queue(self._spec.name),
            {RETRY_COUNT_HEADER: attempts + 1},
            expiration_ms=self._settings.retry_delay_ms,
        )
        return "retried"

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str) -> str:
        _log.error("message_dead_lettered", reason=reason)
        await self._forward(
            message,
            DEAD_LETTER_EXCHANGE,
            self._spec.name,
            {
                REASON_HEADER: reason[:1000],
                "x-original-routing-key": message.routing_key,
                "x-failed-at": datetime.now(UTC).isoformat(),
                "x-consumer": self._name,
            },
        )
        return "dead_lettered"

    async def _forward(
        self,
        message: AbstractIncomingMessage,
        exchange: str,
        routing_key: str,
        extra_headers: dict[str, HeaderValue],
        expiration_ms: int | None = None,
    ) -> None:
        """Republish with a confirm, then ack; if that fails, requeue so nothing is lost."""
        headers: dict[str, HeaderValue] = {
            key: value
            for key, value in message.headers.items()
            if isinstance(value, str | int | bool) and not key.startswith("x-death")
        }
        headers.update(extra_headers)
        outgoing = OutgoingMessage(
            routing_key=routing_key,
            body=message.body,
            message_id=message.message_id or "",
            type=message.type or "",
            trace_id=message.correlation_id,
            headers=headers,
            expiration_ms=expiration_ms,
        )
        try:
            await self._publisher.publish_many([outgoing], exchange=exchange)
        except Exception as error:
            _log.error("forward_failed", exchange=exchange, error=repr(error))
            await message.nack(requeue=True)
            return
        await message.ack()


def _retry_count(message: AbstractIncomingMessage) -> int:
    value = message.headers.get(RETRY_COUNT_HEADER, 0)
    return value if isinstance(value, int) else 0
