"""Servers of our own: each starts on its own port, survives the fault a chaos scenario deals
it with what it had made durable, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from devstack.infra import port_open
from devstack.own_servers import OwnMongo, OwnPostgres, OwnRabbit, OwnRedis, servers_root

pytestmark = pytest.mark.integration


@pytest.fixture
def root() -> Iterator[Path]:
    made = servers_root("own-servers-test-")
    yield made
    shutil.rmtree(made, ignore_errors=True)


async def _count_rows(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM kept")
        return count
    finally:
        await connection.close()


async def test_postgres_recovers_committed_rows_after_an_immediate_stop_and_a_kill(
    root: Path,
) -> None:
    server = OwnPostgres(root / "pg")
    server.start()
    try:
        connection = await asyncpg.connect(server.url)
        await connection.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (1), (2)")
        await connection.close()
        server.stop("immediate")
        assert not port_open("127.0.0.1", server.port)
        server.start()
        assert await _count_rows(server.url) == 2
        server.kill()
        server.start()
        assert await _count_rows(server.url) == 2
    finally:
        server.remove()
    assert not port_open("127.0.0.1", server.port)
    assert not (root / "pg").exists()


async def test_redis_comes_back_empty_after_a_restart(root: Path) -> None:
    server = OwnRedis(root / "redis")
    server.start()
    try:
        client = aioredis.from_url(server.url)
        await client.set("k", "v")
        await client.aclose()
        server.kill()
        server.start()
        client = aioredis.from_url(server.url)
        assert await client.get("k") is None  # no persistence, as the machine's own
        await client.aclose()
    finally:
        server.remove()
    assert not port_open("127.0.0.1", server.port)


async def test_rabbit_node_keeps_a_persistent_message_across_a_kill(root: Path) -> None:
    server = OwnRabbit(root / "rabbit")
    server.start()
    try:
        url = server.add_vhost("kept")
        connection = await aio_pika.connect(url)
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue("q", durable=True, arguments={"x-queue-type": "quorum"})
        await channel.default_exchange.publish(
            aio_pika.Message(b"survives", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue.name,
        )
        await connection.close()
        # A quorum queue killed within a second or so of its declaration comes back with no
        # leader (its Ra server's registration was not on disk yet): docs/reliability.md.
        await asyncio.sleep(5)
        server.kill()
        assert not port_open("127.0.0.1", server.port)
        server.start()
        connection = await aio_pika.connect(url)
        channel = await connection.channel()
        queue = await channel.get_queue("q")
        # A consumer, not basic.get: the restarted queue delivers once its leader is elected.
        async with queue.iterator() as messages:
            async with asyncio.timeout(30):
                message = await anext(messages)
            assert message.body == b"survives"
            await message.ack()
        await connection.close()
    finally:
        server.remove()
    assert not port_open("127.0.0.1", server.port)


async def test_mongo_standin_keeps_documents_across_a_kill(root: Path) -> None:
    server = OwnMongo(root / "mongo")
    server.start()
    try:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(server.url)
        await client["d"]["c"].insert_one({"_id": 1, "text": "kept"})
        await client.close()
        server.kill()
        server.start()
        client = AsyncMongoClient(server.url)
        found = await client["d"]["c"].find_one({"_id": 1})
        await client.close()
        assert found == {"_id": 1, "text": "kept"}
    finally:
        server.remove()
    assert not port_open("127.0.0.1", server.port)
