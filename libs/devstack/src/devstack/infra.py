"""Local infrastructure for `make run` and the test harness.

`ensure_running` checks Postgres, Redis and RabbitMQ and starts the machine's own servers when
they are installed but stopped (only for URLs on loopback: a remote server is not ours to
start). The rest creates and removes the isolated resources a test session works in: a
Postgres database, a RabbitMQ vhost, a Redis key prefix and MongoDB databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import asyncpg
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
START_TIMEOUT_S = 60.0


class InfraError(RuntimeError):
    """A piece of local infrastructure is missing, unreachable or refused an operation."""


@dataclass(frozen=True)
class _Server:
    name: str
    url: str
    default_port: int
    binary: str
    install_hint: str
    start_command: Callable[[int], list[str]]
    answers: Callable[[str, int], bool]

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or self.default_port


def ensure_running(
    postgres_url: str = DEFAULT_POSTGRES_URL,
    redis_url: str = DEFAULT_REDIS_URL,
    rabbitmq_url: str = DEFAULT_RABBITMQ_URL,
) -> None:
    """Make sure Postgres, Redis and RabbitMQ answer, starting local ones that are stopped."""
    servers = (
        _Server(
            "postgres", postgres_url, 5432, "pg_ctlcluster",
            "apt-get install -y postgresql", _postgres_start, port_open,
        ),
        _Server(
            "redis", redis_url, 6379, "redis-server",
            "apt-get install -y redis-server", _redis_start, port_open,
        ),
        _Server(
            "rabbitmq", rabbitmq_url, 5672, "rabbitmq-server",
            "apt-get install -y rabbitmq-server", lambda _port: ["rabbitmq-server", "-detached"],
            lambda host, port: port_open(host, port) and amqp_connects(rabbitmq_url),
        ),
    )  # fmt: skip
    for server in servers:
        _ensure_one(server)


def _ensure_one(server: _Server) -> None:
    host, port = server.address
    if server.answers(host, port):
        _say(f"{server.name}: up")
        return
    if not _is_loopback(host):
        raise InfraError(
            f"{server.name} at {host}:{port} does not answer, and it is not on this machine, "
            "so devstack will not try to start it"
        )
    if port_open(host, port):
        _say(f"{server.name}: port {port} open but not ready yet, waiting…")
    else:
        if shutil.which(server.binary) is None:
            raise InfraError(
                f"{server.name} is not running on {host}:{port} and `{server.binary}` is not "
                f"installed: run `{server.install_hint}` (or set its URL to a running server)"
            )
        command = server.start_command(port)
        _say(f"{server.name}: starting ({shlex.join(command)})…")
        _run_start_command(server.name, command)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.answers(host, port):
        if time.monotonic() > deadline:
            raise InfraError(f"{server.name} did not answer on {host}:{port} within 60 s")
        time.sleep(0.5)
    _say(f"{server.name}: up")


def _say(message: str) -> None:
    print(f"[infra] {message}", flush=True)


def _run_start_command(name: str, command: list[str]) -> None:
    # Output goes to a file, not a pipe: a daemon that inherits the pipe would keep it open and
    # make us wait for the daemon's exit instead of the launcher's.
    with tempfile.TemporaryFile() as output:
        code = subprocess.run(  # noqa: S603
            command, stdout=output, stderr=subprocess.STDOUT, check=False, timeout=START_TIMEOUT_S
        ).returncode
        if code != 0:
            output.seek(0)
            text = output.read().decode(errors="replace")
            raise InfraError(f"{name}: `{shlex.join(command)}` failed with code {code}:\n{text}")


def _postgres_start(_port: int) -> list[str]:
    # pg_ctlcluster starts the cluster on its configured port; the URL's port must match it.
    versions = sorted(
        (p.name for p in Path("/etc/postgresql").glob("*") if p.name.isdigit()), key=int
    )
    if not versions:
        raise InfraError("no PostgreSQL cluster under /etc/postgresql: apt-get install postgresql")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]


def _redis_start(port: int) -> list[str]:
    for directory in ("/var/lib/redis", "/var/log/redis"):
        # Without them redis-server refuses to start; its own error says so if this fails.
        with contextlib.suppress(OSError):
            Path(directory).mkdir(parents=True, exist_ok=True)
    return [
        "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
        "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
    ]  # fmt: skip


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def amqp_connects(url: str) -> bool:
    async def attempt() -> None:
        connection = await aio_pika.connect(url, timeout=5)
        await connection.close()

    # A worker thread with its own loop keeps this callable from sync code and from a running
    # event loop (an async test fixture) alike.
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(lambda: asyncio.run(attempt())).result()
        except Exception:
            return False
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _quote_ident(name: str) -> str:
    if not name or "\x00" in name:
        raise ValueError(f"invalid Postgres identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


async def create_database(admin_url: str, name: str) -> None:
    """Create database `name` unless it exists."""
    connection = await asyncpg.connect(admin_url)
    try:
        if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return
        # Two sessions may race past the check; the loser finds what it wanted.
        with contextlib.suppress(asyncpg.DuplicateDatabaseError):
            await connection.execute(f"CREATE DATABASE {_quote_ident(name)}")
    finally:
        await connection.close()


async def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name` if it exists, disconnecting whoever still uses it."""
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
    finally:
        await connection.close()


def _rabbitmqctl(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        ["rabbitmqctl", *args],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )


def _check_vhost_name(name: str) -> None:
    # rabbitmqctl would read a leading dash as an option.
    if not name or name.startswith("-"):
        raise ValueError(f"invalid vhost name {name!r}")


def create_vhost(name: str, user: str = "guest") -> None:
    """Create vhost `name` (idempotent) and give `user` full permissions on it."""
    _check_vhost_name(name)
    for args in (("add_vhost", name), ("set_permissions", "-p", name, user, ".*", ".*", ".*")):
        done = _rabbitmqctl(*args)
        if done.returncode != 0:
            raise InfraError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")


def delete_vhost(name: str) -> None:
    """Delete vhost `name` and everything in it; a vhost that does not exist is fine."""
    _check_vhost_name(name)
    done = _rabbitmqctl("delete_vhost", name)
    if done.returncode != 0 and "does not exist" not in done.stderr + done.stdout:
        raise InfraError(f"rabbitmqctl delete_vhost {name} failed: {done.stderr or done.stdout}")


def queue_depths(vhost: str, env: Mapping[str, str] | None = None) -> dict[str, int]:
    """Every queue of `vhost` and the messages it holds, ready or unacknowledged (`env` names
    another node, as `RABBITMQ_NODENAME`)."""
    _check_vhost_name(vhost)
    done = _rabbitmqctl(
        "list_queues", "-q", "--no-table-headers", "-p", vhost, "name", "messages", env=env
    )
    if done.returncode != 0:
        raise InfraError(f"rabbitmqctl list_queues -p {vhost} failed: {done.stderr or done.stdout}")
    depths: dict[str, int] = {}
    for line in done.stdout.splitlines():
        name, _, count = line.strip().rpartition("\t")
        if name and count.isdigit():
            depths[name] = int(count)
    return depths


def amqp_url_for_vhost(base_url: str, vhost: str) -> str:
    """`base_url` pointed at `vhost` (quoted, so `/` becomes `%2F`)."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


async def delete_prefix(redis_url: str, prefix: str, batch_size: int = 500) -> int:
    """UNLINK every key starting with `prefix`; returns how many were removed."""
    if not prefix:
        raise ValueError("an empty prefix would delete every key")
    client = aioredis.from_url(redis_url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=batch_size):
            batch.append(key)
            if len(batch) >= batch_size:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


async def drop_mongo_databases(mongo_url: str, names: Iterable[str]) -> None:
    """Drop each MongoDB database in `names`; missing ones are fine."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        for name in names:
            await client.drop_database(name)
    finally:
        await client.close()
