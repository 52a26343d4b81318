"""Confirmed, persistent publishing to the ``chat`` exchange.

Publishes are pipelined: up to ``window`` messages are in flight on the channel before the first
confirm is awaited, instead of one round trip per message. A message the broker nacks, returns as
unroutable (``mandatory``) or does not confirm in time raises :class:`PublishFailedError`: a
publish that did not land is never silent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractRobustConnection,
    FieldValue,
    HeadersType,
)

from contracts.envelope import Envelope, encode_envelope
from contracts.names import EXCHANGE
from contracts.topology import durably_consumed

HeaderValue = FieldValue


class PublishFailedError(RuntimeError):
    """The broker did not take responsibility for a message."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """An encoded envelope and what the broker needs to route and trace it."""

    routing_key: str
    body: bytes
    message_id: str
    type: str
    trace_id: str | None = None
    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    expiration_ms: int | None = None
    """Per-message TTL: how long it waits in a delay queue (the retry queues) before it moves on."""
    mandatory: bool = True
    """Unroutable is an error (the default); events that only live instances subscribe to
    pass ``durably_consumed(key)`` so a moment with no subscriber does not block the outbox."""

    @classmethod
    def from_envelope(cls, envelope: Envelope[object]) -> OutgoingMessage:
        return cls(
            routing_key=envelope.type,
            body=encode_envelope(envelope),
            message_id=str(envelope.id),
            type=envelope.type,
            trace_id=envelope.trace_id,
            mandatory=durably_consumed(envelope.type),
        )


class ConfirmedPublisher:
    """Owns one confirm-mode channel; safe to share between tasks."""

    def __init__(
        self,
        channel: AbstractChannel,
        exchange: AbstractExchange,
        *,
        app_id: str,
        window: int = 256,
        confirm_timeout: float = 10.0,
    ) -> None:
        self._channel = channel
        self._exchange = exchange
        self._exchanges: dict[str, AbstractExchange] = {exchange.name: exchange}
        self._app_id = app_id
        self._window = asyncio.Semaphore(window)
        self._timeout = confirm_timeout

    @classmethod
    async def open(
        cls,
        connection: AbstractRobustConnection,
        *,
        app_id: str,
        exchange: str = EXCHANGE,
        window: int = 256,
    ) -> ConfirmedPublisher:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        target = await channel.get_exchange(exchange, ensure=False)
        return cls(channel, target, app_id=app_id, window=window)

    async def close(self) -> None:
        await self._channel.close()

    async def publish(self, message: OutgoingMessage) -> None:
        await self.publish_many([message])

    async def publish_envelopes(self, envelopes: Sequence[Envelope[object]]) -> None:
        await self.publish_many([OutgoingMessage.from_envelope(e) for e in envelopes])

    async def publish_many(
        self, messages: Sequence[OutgoingMessage], *, exchange: str | None = None
    ) -> None:
        """All or an error: returns only when the broker confirmed every message.

        Tasks are created in order and the channel writes frames under a FIFO lock, so the
        broker receives the messages in the order given. ``exchange`` defaults to ``chat``;
        ``""`` is the default exchange (routing straight to a queue by name).
        """
        if not messages:
            return
        target = self._exchange if exchange is None else await self._exchange_named(exchange)
        tasks = [asyncio.create_task(self._publish_one(target, message)) for message in messages]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise PublishFailedError(
                f"{len(failures)} of {len(messages)} messages not confirmed: {failures[0]!r}"
            ) from failures[0]

    async def _exchange_named(self, name: str) -> AbstractExchange:
        exchange = self._exchanges.get(name)
        if exchange is None:
            exchange = (
                self._channel.default_exchange
                if name == ""
                else await self._channel.get_exchange(name, ensure=False)
            )
            self._exchanges[name] = exchange
        return exchange

    async def _publish_one(self, exchange: AbstractExchange, message: OutgoingMessage) -> None:
        headers: HeadersType = dict(message.headers)
        if message.trace_id:
            headers["x-trace-id"] = message.trace_id
        amqp_message = aio_pika.Message(
            message.body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            type=message.type,
            app_id=self._app_id,
            timestamp=datetime.now(UTC),
            correlation_id=message.trace_id,
            headers=headers,
            expiration=None if message.expiration_ms is None else message.expiration_ms / 1000,
        )
        async with self._window:
            # Straight to the channel, without waiting for each publish's frames to be written
            # before the next one may queue its own (aio-pika's ``Exchange.publish`` waits):
            # what a batch publishes in one turn then leaves in one send (CorkedStreamWriter).
            # The window bounds what is written and not yet confirmed.
            if self._channel.is_closed:
                raise PublishFailedError("the publishing channel is closed")
            channel = await self._channel.get_underlay_channel()
            assert isinstance(channel, aiormq.Channel)  # its basic_publish takes ``wait``
            confirmation = await channel.basic_publish(
                amqp_message.body,
                exchange=exchange.name,
                routing_key=message.routing_key,
                properties=amqp_message.properties,
                mandatory=message.mandatory,
                timeout=self._timeout,
                wait=False,
            )
        # With confirms on, a nack or a return raises above; anything but an ack is a failure.
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise PublishFailedError(f"unexpected confirmation {confirmation!r}")
