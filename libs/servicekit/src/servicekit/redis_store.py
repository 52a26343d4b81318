"""Redis client lifecycle and key naming.

Every key goes through :class:`KeySpace`, so a deployment (or a test session) can put the whole
fleet under one prefix without touching any other user of the same Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import redis.asyncio as redis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from servicekit.http_app import add_readiness_check
from servicekit.settings import RedisSettings

Redis = redis.Redis


class KeySpace:
    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)


def create_redis(settings: RedisSettings) -> Redis:
    """A client on a bounded pool: past ``max_connections`` a command waits (up to the socket
    timeout) for a connection to come back instead of opening another.

    A command that meets a closed connection (Redis restarted, or a failover) is tried again on
    a new one, three times with a short backoff: a pool otherwise hands out each connection the
    restart closed once more, and each of those commands would fail."""
    pool = redis.BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    client: Redis = redis.Redis.from_pool(pool)
    return client


def redis_resource(
    key: web.AppKey[Redis], settings: RedisSettings
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """A ``cleanup_ctx`` entry owning the app's Redis client."""

    @asynccontextmanager
    async def resource(app: web.Application) -> AsyncIterator[None]:
        client = create_redis(settings)
        app[key] = client
        add_readiness_check(app, "redis", client.ping)
        try:
            yield
        finally:
            await client.aclose()

    return resource
