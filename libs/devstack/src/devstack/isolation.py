"""Isolated infrastructure for one test session: its own Postgres databases, RabbitMQ vhost,
Redis key prefix and MongoDB databases, all removed when the session ends.

Nothing here touches what a developer's running fleet uses: every name carries the session's
random id.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from devstack.fleet import MONGO_OWNERS, POSTGRES_OWNERS, FleetPlan
from devstack.infra import (
    amqp_url_for_vhost,
    create_database,
    create_vhost,
    delete_prefix,
    delete_vhost,
    drop_database,
    drop_mongo_databases,
    ensure_running,
)
from devstack.mongo_standin import MongoStandin, start_mongo_standin

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
RABBITMQ_PORT = urlsplit(RABBITMQ_URL).port or 5672
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


# Every test client comes from loopback: per-address abuse limits would throttle the suite
# itself. Tests of those limits configure their own. REST sends per user get a burst that
# covers the longest scripted conversation (105 messages).
TEST_LIMITS: dict[str, str] = {
    "REGISTER_MAX_PER_IP": "100000",
    "LOGIN_MAX_ATTEMPTS_PER_IP": "100000",
    "RATE_LIMIT_REST_SEND_PER_USER": "120:10",
    # Small enough that a test can exceed it with a modest image.
    "MEDIA_DECODE_BUDGET_BYTES": str(16 * 1024 * 1024),
    "MEDIA_QUOTA_BYTES_PER_USER": str(3 * 1024 * 1024),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def server_port() -> int:
    """A free port below the kernel's ephemeral range, for a server that is stopped and started
    again on it: ``free_port`` hands out ephemeral ports, and while the server is down any
    outgoing connection of the machine may be given its port (a RabbitMQ node then fails to
    bind its distribution port on restart)."""
    try:
        first_ephemeral = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 32768
    for _ in range(200):
        port = random.randrange(10000, first_ephemeral)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between 10000 and {first_ephemeral}")


@dataclass
class IsolatedInfra:
    """One namespace (``t<hex>``) across every store; ``close()`` removes all of it."""

    run_dir: Path
    namespace: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    mongo: MongoStandin | None = None
    mongo_url: str = ""
    databases: list[str] = field(default_factory=list)
    vhost_created: bool = False
    extra_vhosts: list[str] = field(default_factory=list)

    @property
    def amqp_url(self) -> str:
        return amqp_url_for_vhost(RABBITMQ_URL, self.namespace)

    @property
    def redis_prefix(self) -> str:
        return f"{self.namespace}:"

    def database_url(self, name: str) -> str:
        base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
        return f"{base}/{self.namespace}_{name}"

    def open(self) -> IsolatedInfra:
        ensure_running(POSTGRES_ADMIN_URL, REDIS_URL, RABBITMQ_URL)
        create_vhost(self.namespace)
        self.vhost_created = True
        external = os.environ.get("MONGODB_URL")
        if external:
            self.mongo_url = external
        else:
            self.mongo = start_mongo_standin(log_file=self.run_dir / "mongo-standin.log")
            self.mongo_url = self.mongo.url
        return self

    def own_vhost(self, name: str) -> str:
        """The AMQP URL of a vhost ``<namespace>-<name>`` for a suite whose queues must start
        empty, whatever other suites published on the session's vhost."""
        vhost = f"{self.namespace}-{name}"
        create_vhost(vhost)
        self.extra_vhosts.append(vhost)
        return amqp_url_for_vhost(RABBITMQ_URL, vhost)

    def drop_own_vhost(self, name: str) -> None:
        """Remove a vhost of ``own_vhost`` now rather than at the session's end: a suite that
        makes one per test keeps the broker's quorum queues few."""
        vhost = f"{self.namespace}-{name}"
        delete_vhost(vhost)
        if vhost in self.extra_vhosts:
            self.extra_vhosts.remove(vhost)

    async def create_database(self, name: str) -> str:
        full = f"{self.namespace}_{name}"
        await create_database(POSTGRES_ADMIN_URL, full)
        self.databases.append(full)
        return self.database_url(name)

    def fleet_plan(self, run_dir: Path, *, gateways: int = 1) -> FleetPlan:
        """A process-mode fleet on free ports inside this namespace."""
        return FleetPlan(
            run_dir=run_dir,
            jwt_secret=secrets.token_urlsafe(48),
            listen_port=free_port(),
            service_ports={
                "auth": (free_port(),),
                "chat": (free_port(),),
                "gateway": tuple(free_port() for _ in range(gateways)),
                "workers": (free_port(),),
            },
            postgres_url=POSTGRES_ADMIN_URL,
            database_prefix=f"{self.namespace}_",
            rabbitmq_url=self.amqp_url,
            redis_url=REDIS_URL,
            redis_prefix=self.redis_prefix,
            mongo_url=self.mongo_url,
            mongo_database_prefix=f"{self.namespace}_",
            app_env="test",
            extra_env=dict(TEST_LIMITS),
        )

    def adopt_fleet_databases(self) -> None:
        """The fleet's ``prepare`` created these; the session still removes them."""
        self.databases.extend(f"{self.namespace}_{service}" for service in POSTGRES_OWNERS)

    def close(self) -> None:
        asyncio.run(self._drop_stores())
        for vhost in self.extra_vhosts:
            delete_vhost(vhost)
        if self.vhost_created:
            delete_vhost(self.namespace)
        if self.mongo is not None:
            self.mongo.stop()

    async def _drop_stores(self) -> None:
        for name in dict.fromkeys(self.databases):
            await drop_database(POSTGRES_ADMIN_URL, name)
        await delete_prefix(REDIS_URL, self.redis_prefix)
        if self.mongo_url:
            names = [f"{self.namespace}_{service}" for service in MONGO_OWNERS]
            names += [f"{self.namespace}_kit"]
            await drop_mongo_databases(self.mongo_url, names)
