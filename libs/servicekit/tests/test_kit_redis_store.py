"""The Redis client survives what a Redis restart does to it: connections the server closed."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as raw_redis

from devstack.isolation import REDIS_URL, IsolatedInfra
from servicekit.redis_store import create_redis
from servicekit.settings import RedisSettings

pytestmark = pytest.mark.integration


async def test_a_connection_the_server_closed_is_opened_again_for_the_next_command(
    isolated_infra: IsolatedInfra,
) -> None:
    prefix = f"{isolated_infra.redis_prefix}conn-{uuid.uuid4().hex[:8]}:"
    client = create_redis(RedisSettings(REDIS_URL, prefix, max_connections=1))
    admin = raw_redis.Redis.from_url(REDIS_URL)
    try:
        own_id = await client.client_id()
        assert await admin.client_kill_filter(_id=str(own_id)) == 1  # as a restart would
        assert await client.ping() is True
        assert await client.client_id() != own_id
    finally:
        await admin.aclose()
        await client.aclose()
