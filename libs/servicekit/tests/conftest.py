"""Fixtures of the service kit's integration tests: a migrated database of the session's own,
broker connections into the session's vhost, and throwaway queues."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from devstack.isolation import IsolatedInfra
from servicekit.amqp.connection import connect
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


@pytest.fixture
async def broker(isolated_infra: IsolatedInfra) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect(isolated_infra.amqp_url, "kit-tests")
    channel = await connection.channel()
    await declare_exchanges(channel)
    await channel.close()
    yield connection
    await connection.close()


@pytest.fixture
async def publisher(broker: AbstractRobustConnection) -> AsyncIterator[ConfirmedPublisher]:
    opened = await ConfirmedPublisher.open(broker, app_id="kit-tests")
    yield opened
    await opened.close()
