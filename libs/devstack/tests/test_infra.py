"""Local infrastructure helpers against the machine's real Postgres, Redis and RabbitMQ."""

from __future__ import annotations

import contextlib
import shutil
import socket
import uuid

import aio_pika
import asyncpg
import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from devstack import infra
from devstack.isolation import RABBITMQ_URL
from devstack.mongo_standin import start_mongo_standin

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def test_ensure_running_reports_each_server_up(capsys: pytest.CaptureFixture[str]) -> None:
    infra.ensure_running(rabbitmq_url=RABBITMQ_URL)
    out = capsys.readouterr().out
    for name in ("postgres", "redis", "rabbitmq"):
        assert f"[infra] {name}: up" in out


async def test_a_stopped_local_redis_is_started(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"  # a private instance; the shared one is untouched
    infra.ensure_running(redis_url=url, rabbitmq_url=RABBITMQ_URL)
    client = aioredis.from_url(url)
    try:
        assert await client.ping()
    finally:
        with contextlib.suppress(aioredis.ConnectionError):
            await client.shutdown(nosave=True)  # stops the server this test started
        await client.aclose()
    out = capsys.readouterr().out
    assert "[infra] redis: starting (redis-server --daemonize yes" in out
    assert "--save '' --appendonly no" in out
    assert "\n[infra] redis: up\n" in out


def test_a_stopped_server_that_is_not_installed_names_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = _free_port()  # a loopback port nobody listens on
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(infra.InfraError, match="apt-get install -y redis-server"):
        infra.ensure_running(redis_url=f"redis://127.0.0.1:{port}/0", rabbitmq_url=RABBITMQ_URL)


def test_a_remote_server_is_never_started() -> None:
    with pytest.raises(infra.InfraError, match="not on this machine"):
        infra.ensure_running(redis_url="redis://192.0.2.1:6379/0")  # TEST-NET-1, unroutable


async def test_create_and_drop_database_round_trip() -> None:
    name = _unique("t_devstack")
    admin = infra.DEFAULT_POSTGRES_URL
    exists = "SELECT count(*) FROM pg_database WHERE datname = $1"
    await infra.create_database(admin, name)
    await infra.create_database(admin, name)  # idempotent
    connection = await asyncpg.connect(admin)
    try:
        assert await connection.fetchval(exists, name) == 1
        user_session = await asyncpg.connect(admin.rsplit("/", 1)[0] + f"/{name}")
        await infra.drop_database(admin, name)  # an open session does not block the drop
        assert await connection.fetchval(exists, name) == 0
        with pytest.raises((asyncpg.InterfaceError, asyncpg.PostgresError)):
            await user_session.fetchval("SELECT 1")  # it was disconnected
        await infra.drop_database(admin, name)  # dropping what is gone is fine
    finally:
        await infra.drop_database(admin, name)
        await connection.close()


def test_identifiers_are_quoted() -> None:
    assert infra._quote_ident('we"ird name') == '"we""ird name"'


def test_amqp_url_for_vhost_quotes_the_name() -> None:
    base = "amqp://guest:guest@127.0.0.1:5672/"
    assert infra.amqp_url_for_vhost(base, "t_abc") == "amqp://guest:guest@127.0.0.1:5672/t_abc"
    assert infra.amqp_url_for_vhost(base + "old?heartbeat=5", "a/b") == (
        "amqp://guest:guest@127.0.0.1:5672/a%2Fb?heartbeat=5"
    )


async def test_vhost_create_connect_delete() -> None:
    vhost = _unique("t_devstack")
    url = infra.amqp_url_for_vhost(RABBITMQ_URL, vhost)
    infra.create_vhost(vhost)
    try:
        infra.create_vhost(vhost)  # idempotent
        connection = await aio_pika.connect(url, timeout=10)
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        assert queue.name
        await connection.close()
    finally:
        infra.delete_vhost(vhost)
    with pytest.raises(Exception):  # noqa: B017, PT011 - aio-pika/aiormq raise several kinds
        await aio_pika.connect(url, timeout=10)
    infra.delete_vhost(vhost)  # deleting what is gone is fine


async def test_delete_prefix_spares_other_keys() -> None:
    prefix, control = _unique("t_devstack") + ":", _unique("t_control") + ":"
    client = aioredis.from_url(infra.DEFAULT_REDIS_URL)
    try:
        await client.mset({f"{prefix}{i}": i for i in range(1234)})
        await client.set(f"{prefix}*literal", 1)
        await client.set(f"{control}keep", 1)
        assert await infra.delete_prefix(infra.DEFAULT_REDIS_URL, prefix) == 1235
        assert [k async for k in client.scan_iter(match=f"{prefix}*")] == []
        assert await client.get(f"{control}keep") == b"1"
    finally:
        await client.delete(f"{control}keep")
        await infra.delete_prefix(infra.DEFAULT_REDIS_URL, prefix)
        await client.aclose()


async def test_delete_prefix_refuses_an_empty_prefix() -> None:
    with pytest.raises(ValueError, match="every key"):
        await infra.delete_prefix(infra.DEFAULT_REDIS_URL, "")


async def test_drop_mongo_databases() -> None:
    standin = start_mongo_standin()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(standin.url)
    try:
        keep, drop = _unique("t_keep"), _unique("t_drop")
        for name in (keep, drop):
            await client[name]["c"].insert_one({"x": 1})
        await infra.drop_mongo_databases(standin.url, [drop, _unique("t_never_existed")])
        names = await client.list_database_names()
        assert keep in names
        assert drop not in names
    finally:
        await client.close()
        standin.stop()
