"""Robust AMQP connections: they reconnect after a broker restart and restore their channels,
queues and consumers; the readiness probe really opens a channel.

Frames written to the broker in one event-loop turn leave in one send. aiormq writes each
frame (a publish, an ack) to its stream as it comes; on loopback, and on any busy link, every
``send`` is a syscall and a TCP segment the broker must wake up for. The connection's stream
writer here holds what is written during a turn and sends it all at the end of the turn
(``call_soon``), so a relay publishing a batch, or a consumer acking one, costs one send. A
``drain`` sends what is held first, so aiormq's flow control sees the real buffer. It is
plugged in through aiormq's ``transport_factory`` (plain TCP only; ``amqps`` URLs keep
aiormq's own TLS transport).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from aiormq.connection import TransportFactory
from aiormq.exceptions import AMQPConnectionError
from yarl import URL


class CorkedStreamWriter(asyncio.StreamWriter):
    """A stream writer that sends what one loop turn wrote in one ``transport.write``."""

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        protocol: asyncio.StreamReaderProtocol,
        reader: asyncio.StreamReader,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(transport, protocol, reader, loop)
        self._held: list[bytes] = []
        self._turn_loop = loop

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._turn_loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def flush(self) -> None:
        """Send what is held now (also at the end of the turn it was written in)."""
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held.clear()
        if not self.transport.is_closing():
            super().write(data)

    async def drain(self) -> None:
        self.flush()
        await super().drain()

    def write_eof(self) -> None:
        self.flush()
        super().write_eof()

    def close(self) -> None:
        self.flush()
        super().close()


class CorkedTcpTransportFactory(TransportFactory):
    """aiormq's plain TCP transport, with a :class:`CorkedStreamWriter`."""

    async def create(
        self, url: URL, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        kwargs.pop("ssl_context_provider", None)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(
                lambda: protocol, host=url.host or "localhost", port=url.port or 5672, **kwargs
            )
        except OSError as error:
            raise AMQPConnectionError(*error.args) from error
        return reader, CorkedStreamWriter(transport, protocol, reader, loop)


class CorkedRobustConnection(aio_pika.RobustConnection):
    """aio-pika's robust connection whose (re)connections use the corked TCP transport."""

    def __init__(self, url: URL, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any):
        super().__init__(url, loop, **kwargs)
        if self.url.scheme == "amqp":
            self.kwargs["transport_factory"] = CorkedTcpTransportFactory()


async def connect(url: str, name: str) -> AbstractRobustConnection:
    return await aio_pika.connect_robust(
        url,
        client_properties={"connection_name": name},
        reconnect_interval=1,
        connection_class=CorkedRobustConnection,
    )


async def probe_broker(connection: AbstractRobustConnection) -> None:
    if connection.is_closed or not connection.connected.is_set():
        raise ConnectionError("broker connection is down")
    channel = await connection.channel(publisher_confirms=False)
    await channel.close()
