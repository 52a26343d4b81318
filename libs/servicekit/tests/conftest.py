"""Fixtures of the service kit's integration tests: a migrated database of the session's own,
and the exchanges on the session's vhost (``broker`` is devstack's), which no service app
declares here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from devstack.isolation import IsolatedInfra
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.amqp.topology import declare_exchanges
from servicekit.migrations import apply_migrations, service_kit_migrations
from servicekit.postgres import Pool, open_pool


@pytest.fixture(scope="session")
async def kit_database_url(isolated_infra: IsolatedInfra) -> str:
    url = await isolated_infra.create_database("kit")
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn, [service_kit_migrations()])
        await conn.execute("CREATE TABLE kit_effects (event_id uuid NOT NULL, note text)")
    finally:
        await conn.close()
    return url


@pytest.fixture
async def pool(kit_database_url: str) -> AsyncIterator[Pool]:
    async with open_pool(kit_database_url) as opened:
        await opened.execute("TRUNCATE outbox, processed_events, kit_effects")
        yield opened


@pytest.fixture(scope="module")
async def exchanges(broker: AbstractRobustConnection) -> None:
    """``chat`` and the dead-letter exchange, for probe queues to bind to and publishes to
    reach (a consumer runner declares them too, but only once it starts)."""
    channel = await broker.channel()
    await declare_exchanges(channel)
    await channel.close()


@pytest.fixture
async def publisher(
    broker: AbstractRobustConnection, exchanges: None
) -> AsyncIterator[ConfirmedPublisher]:
    opened = await ConfirmedPublisher.open(broker, app_id="kit-tests")
    yield opened
    await opened.close()
