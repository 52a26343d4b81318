"""The fleet on servers of its own, each process and each server killable on its own.

``ChaosStack`` starts a PostgreSQL cluster, a redis-server, a RabbitMQ node and the MongoDB
stand-in of its own (``devstack.own_servers``), prepares the fleet on them exactly as
``make run`` does (databases, migrations, the nginx config), and then runs every process of the
plan itself rather than under honcho, so that a scenario may SIGKILL one gateway or chat and
start it again while the rest goes on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from devstack.fleet import SERVICES, FleetPlan, Process, prepare
from devstack.isolation import TEST_LIMITS, server_port
from devstack.own_servers import (
    OwnMongo,
    OwnPostgres,
    OwnRabbit,
    OwnRedis,
    dies_with_parent,
    servers_root,
)
from e2e.fleet import http_status

READY_TIMEOUT_SECONDS = 90.0


class StackError(RuntimeError):
    """A process or server of the stack did not come up."""


@dataclass
class ChaosStack:
    gateways: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    root: Path = field(default_factory=lambda: servers_root("chaos-"))
    processes: dict[str, Process] = field(default_factory=dict)
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.postgres = OwnPostgres(self.root / "postgres")
        self.redis = OwnRedis(self.root / "redis")
        self.rabbit = OwnRabbit(self.root / "rabbitmq")
        self.mongo = OwnMongo(self.root / "mongo")
        self.plan = FleetPlan(
            run_dir=self.root / "fleet",
            jwt_secret=secrets.token_urlsafe(48),
            listen_port=server_port(),
            service_ports={
                "auth": (server_port(),),
                "chat": (server_port(),),
                "gateway": tuple(server_port() for _ in range(self.gateways)),
                "workers": (server_port(),),
            },
            postgres_url=self.postgres.url,
            rabbitmq_url=self.rabbit.url,
            redis_url=self.redis.url,
            mongo_url=self.mongo.url,
            app_env="test",
            extra_env={**TEST_LIMITS, **self.extra_env},
        )

    @property
    def public_url(self) -> str:
        return self.plan.public_url

    def log_path(self, name: str) -> Path:
        return self.plan.run_dir / f"{name}.log"

    # lifecycle

    def start(self) -> None:
        for server in (self.postgres, self.redis, self.rabbit, self.mongo):
            server.start()
        prepare(self.plan, start_infra=False)
        self.processes = {process.name: process for process in self.plan.processes()}
        for name in self.processes:
            self.start_process(name)
        self.wait_ready()

    def stop(self) -> None:
        for name in list(self.running):
            self.stop_process(name)
        for server in (self.mongo, self.rabbit, self.redis, self.postgres):
            server.remove()
        with contextlib.suppress(OSError):
            for path in sorted(self.root.rglob("*"), reverse=True):
                if path.is_file():
                    path.unlink()
                else:
                    path.rmdir()
            self.root.rmdir()

    def keep_logs(self, into: Path) -> None:
        """Copy every process's log into ``into`` (before ``stop`` removes them)."""
        into.mkdir(parents=True, exist_ok=True)
        for log in self.plan.run_dir.glob("*.log"):
            (into / log.name).write_bytes(log.read_bytes())

    # processes

    def start_process(self, name: str) -> None:
        process = self.processes[name]
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
        env.update(process.env)
        env["PYTHONUNBUFFERED"] = "1"
        log: IO[bytes]
        with self.log_path(name).open("ab") as log:
            self.running[name] = subprocess.Popen(
                dies_with_parent(list(process.argv)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def kill_process(self, name: str) -> None:
        """SIGKILL: no drain, no shutdown hook, whatever it held in memory is gone."""
        process = self.running.pop(name)
        process.kill()
        process.wait(timeout=30)

    def stop_process(self, name: str) -> None:
        process = self.running.pop(name)
        # nginx stops gracefully on SIGQUIT; the services on SIGTERM.
        process.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def instance_names(self, service: str) -> list[str]:
        count = len(self.plan.service_ports[service])
        return [service if i == 0 else f"{service}{i + 1}" for i in range(count)]

    def instance_port(self, name: str) -> int:
        for service in SERVICES:
            for instance, port in zip(
                self.instance_names(service), self.plan.service_ports[service], strict=True
            ):
                if instance == name:
                    return port
        raise KeyError(name)

    def wait_ready(
        self, names: list[str] | None = None, timeout: float = READY_TIMEOUT_SECONDS
    ) -> float:
        """Wait until the named instances (every one by default) answer ``/readyz`` on their
        own port and through nginx; returns the seconds it took."""
        started = time.monotonic()
        wanted = names or [n for s in SERVICES for n in self.instance_names(s)]
        urls = [f"http://127.0.0.1:{self.instance_port(n)}/readyz" for n in wanted]
        urls += [f"{self.public_url}/api/{service}/readyz" for service in SERVICES]
        deadline = started + timeout
        while pending := [url for url in urls if http_status(url) != 200]:
            for name, process in self.running.items():
                if process.poll() is not None:
                    raise StackError(
                        f"{name} exited ({process.returncode}); see {self.log_path(name)}"
                    )
            if time.monotonic() > deadline:
                raise StackError(f"not ready after {timeout:.0f} s: {', '.join(pending)}")
            time.sleep(0.1)
        return time.monotonic() - started
