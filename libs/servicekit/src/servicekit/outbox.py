"""The transactional outbox and its relay.

Writers call :func:`add_to_outbox` inside the transaction that changes state, so the event
exists if and only if the change committed. The relay publishes unpublished rows in id order with
publisher confirms and marks them published only after the broker confirmed them. It is woken by
LISTEN/NOTIFY (a trigger notifies at commit) and also polls, so a missed notification only delays
a row. Several relays may run against one database: a transaction-scoped advisory lock lets one
publish at a time, which keeps the order and never publishes a row twice on purpose. A crash
between the confirm and the commit republishes the batch; consumers drop the repeat by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Sequence

import asyncpg

from contracts.envelope import Envelope, encode_envelope
from contracts.topology import durably_consumed
from servicekit.amqp.publisher import ConfirmedPublisher, OutgoingMessage
from servicekit.logs import get_logger
from servicekit.metrics import ServiceMetrics
from servicekit.postgres import Connection, Pool

NOTIFY_CHANNEL = "outbox"
_RELAY_LOCK = zlib.crc32(b"servicekit:outbox-relay")
_log = get_logger("servicekit.outbox")


async def add_to_outbox(conn: Connection, envelopes: Sequence[Envelope[object]]) -> None:
    """Write events in the caller's transaction; one round trip for any number of them."""
    if not envelopes:
        return
    await conn.execute(
        """
        INSERT INTO outbox (event_id, routing_key, payload, trace_id)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::text[])
        """,
        [e.id for e in envelopes],
        [e.type for e in envelopes],
        [encode_envelope(e) for e in envelopes],
        [e.trace_id for e in envelopes],
    )


class OutboxRelay:
    def __init__(
        self,
        pool: Pool,
        publisher: ConfirmedPublisher,
        *,
        database_url: str,
        metrics: ServiceMetrics | None = None,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        retention_seconds: int = 3600,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._database_url = database_url
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention_seconds = retention_seconds
        self._wake = asyncio.Event()
        self._listener: Connection | None = None

    async def publish_pending(self) -> int:
        """One pass: publish up to a batch of rows; returns how many were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELAY_LOCK):
                return 0
            rows = await conn.fetch(
                """
                SELECT id, event_id, routing_key, payload, trace_id FROM outbox
                WHERE published_at IS NULL ORDER BY id LIMIT $1
                """,
                self._batch_size,
            )
            if not rows:
                return 0
            await self._publisher.publish_many(
                [
                    OutgoingMessage(
                        routing_key=row["routing_key"],
                        body=row["payload"],
                        message_id=str(row["event_id"]),
                        type=row["routing_key"],
                        trace_id=row["trace_id"],
                        mandatory=durably_consumed(row["routing_key"]),
                    )
                    for row in rows
                ]
            )
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
            )
        if self._metrics is not None:
            self._metrics.outbox_published.inc(len(rows))
        return len(rows)

    async def delete_published(self) -> int:
        result = await self._pool.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
            self._retention_seconds,
        )
        return int(result.split()[-1])

    async def run(self) -> None:
        """Publish until cancelled; failures (broker or database down) back off and retry."""
        try:
            await self._run_forever()
        finally:
            await self._drop_listener()

    async def _run_forever(self) -> None:
        backoff = 0.5
        loop = asyncio.get_running_loop()
        last_cleanup = loop.time()
        while True:
            try:
                await self._ensure_listener()
                while await self.publish_pending() == self._batch_size:
                    pass
                if loop.time() - last_cleanup > 60:
                    await self.delete_published()
                    last_cleanup = loop.time()
                backoff = 0.5
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await self._wake.wait()
                self._wake.clear()
            except Exception as error:
                _log.warning("outbox_relay_failed", error=repr(error), retry_in=backoff)
                await self._drop_listener()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        await self._drop_listener()
        listener: Connection = await asyncpg.connect(self._database_url)
        await listener.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
        self._listener = listener
        # Rows committed while no one listened are picked up by the pass that follows.
        self._wake.set()

    async def _drop_listener(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)
