"""asyncpg pool lifecycle for aiohttp apps, with its readiness probe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
from aiohttp import web
from asyncpg.pool import PoolConnectionProxy

from servicekit.http_app import add_readiness_check

type Pool = asyncpg.Pool[asyncpg.Record]
# A connection of one's own or one borrowed from a pool: store code accepts either.
type Connection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    pool: Pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        # Connections that went through a database restart are replaced, not reused broken.
        max_inactive_connection_lifetime=60,
        command_timeout=30,
    )
    return pool


@asynccontextmanager
async def open_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> AsyncIterator[Pool]:
    pool = await create_pool(url, min_size=min_size, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


def postgres_resource(
    key: web.AppKey[Pool], url: str, *, max_size: int = 10
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """A ``cleanup_ctx`` entry: opens the pool at start, registers its probe, closes it at stop."""

    @asynccontextmanager
    async def resource(app: web.Application) -> AsyncIterator[None]:
        async with open_pool(url, max_size=max_size) as pool:
            app[key] = pool
            add_readiness_check(app, "postgres", lambda: pool.fetchval("SELECT 1"))
            yield

    return resource
