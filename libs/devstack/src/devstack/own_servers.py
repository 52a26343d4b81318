"""Throwaway servers of our own, on free ports, that a fault test may stop, crash and restart.

``make chaos`` must never touch the machine's shared Postgres, Redis or RabbitMQ, yet it has to
kill real ones. Each class here makes a server that lives in one directory and belongs to no
one else: a PostgreSQL cluster made with ``initdb``, a ``redis-server`` with no persistence, a
second RabbitMQ node with its own node name, ports and Mnesia directory, and the MongoDB
stand-in on its SQLite engine (so a crash loses nothing it had acknowledged).

Every server has ``start()``, ``stop()`` (orderly), ``kill()`` (SIGKILL of its own pid, read
from its own pid file or process handle) and ``remove()`` (stop, then delete its directory).
``start()`` returns once the server answers its clients.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from devstack.infra import (
    InfraError,
    amqp_connects,
    amqp_url_for_vhost,
    port_open,
    queue_depths,
)
from devstack.isolation import server_port
from devstack.mongo_standin import MongoStandin, start_mongo_standin

START_TIMEOUT_S = 90.0
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQ_HOME = "/var/lib/rabbitmq"  # the rabbitmq account's home: its Erlang cookie
PostgresStopMode = Literal["smart", "fast", "immediate"]


def _wait_until(what: str, ready: Callable[[], bool], timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise InfraError(f"{what} not ready within {timeout:.0f} s")
        time.sleep(0.1)


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - our own argv
        command, capture_output=True, text=True, check=False, timeout=START_TIMEOUT_S, env=env
    )
    if done.returncode != 0:
        raise InfraError(f"{what} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


def _kill_pid(pid: int | None) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def dies_with_parent(command: list[str]) -> list[str]:
    """``command`` set to get SIGTERM when the process that started it dies (util-linux
    ``setpriv --pdeathsig``), so a crashed harness leaves no server behind. A prctl in a
    ``preexec_fn`` would do the same but is unsafe while other threads run."""
    return ["setpriv", "--pdeathsig", "TERM", *command]


def servers_root(prefix: str = "own-servers-") -> Path:
    """A new directory for servers of our own, that the postgres and rabbitmq accounts may
    enter (a pytest ``tmp_path`` is root's alone)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


def _spawn(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 - our own argv
            dies_with_parent(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            env=env,
        )


def _postgres_bin(name: str) -> str:
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
    )
    if not versions:
        raise InfraError("no PostgreSQL under /usr/lib/postgresql: apt-get install postgresql")
    return str(versions[-1] / name)


def _as_user(user: str, command: list[str]) -> list[str]:
    """``command`` run as ``user`` when we are root (initdb and the RabbitMQ launcher refuse
    root, or switch to their own account)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", user, "--", *command]


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster of our own: ``initdb`` into ``root``, trust auth on loopback.

    The postmaster runs in the foreground under a process of ours (``runuser`` when we are
    root), so a crashed one is reaped at once and never blocks the next start as a zombie
    still named in ``postmaster.pid``.
    """

    root: Path
    port: int = field(default_factory=server_port)
    user: str = "postgres"
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _owner(self) -> str:
        return "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        if not (self.data_dir / "PG_VERSION").exists():
            initdb = [_postgres_bin("initdb"), "-D", str(self.data_dir), "-U", self.user]
            initdb += ["--auth=trust", "--no-sync", "-E", "UTF8"]
            _run(_as_user(self._owner(), initdb), "initdb")
        command = [_postgres_bin("postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        command += ["-k", str(self.root), "-c", "listen_addresses=127.0.0.1"]
        self._process = _spawn(_as_user(self._owner(), command), self.root / "log")
        ready = [_postgres_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]

        def answers() -> bool:
            if self._process is not None and self._process.poll() is not None:
                log = self.root / "log"
                raise InfraError(f"postgres exited; {log}:\n{tail(log)}")
            return subprocess.run(ready, check=False).returncode == 0  # noqa: S603

        _wait_until(f"postgres on {self.port}", answers)

    def pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None

    def stop(self, mode: PostgresStopMode = "fast") -> None:
        """``immediate`` ends every backend without a checkpoint: the next start runs crash
        recovery from the WAL."""
        if self._process is None or self._process.poll() is not None:
            return
        stop = [_postgres_bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"]
        _run(_as_user(self._owner(), stop), f"pg_ctl stop -m {mode}")
        self._process.wait(timeout=60)

    def kill(self) -> None:
        """SIGKILL of the postmaster; its backends notice and exit."""
        if self._process is None or self._process.poll() is not None:
            return
        _kill_pid(self.pid())
        self._process.wait(timeout=60)

    def remove(self) -> None:
        with contextlib.suppress(InfraError):
            self.stop("immediate")
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class OwnRedis:
    """A ``redis-server`` of our own that keeps nothing on disk (as the machine's does)."""

    root: Path
    port: int = field(default_factory=server_port)
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.root)]
        command += ["--logfile", str(self.root / "redis.log")]
        self._process = _spawn(command, self.root / "redis.stdout.log")
        _wait_until(f"redis on {self.port}", lambda: port_open("127.0.0.1", self.port))

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(timeout=30)

    def kill(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(timeout=30)

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class OwnRabbit:
    """A RabbitMQ node of our own (``chaos-<hex>@localhost``) with its own AMQP and
    distribution ports, Mnesia directory and no plugins."""

    root: Path
    port: int = field(default_factory=server_port)
    dist_port: int = field(default_factory=server_port)
    node_name: str = field(default_factory=lambda: f"own-{uuid.uuid4().hex[:8]}@localhost")
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def vhost_url(self, vhost: str) -> str:
        return amqp_url_for_vhost(self.url, vhost)

    @property
    def env(self) -> dict[str, str]:
        """What the RabbitMQ scripts (``rabbitmq-server``, ``rabbitmqctl``) read."""
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq"),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PID_FILE": str(self.root / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
        }

    def start(self) -> None:
        for sub in ("mnesia", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            # A test machine's disk may be nearly full: a disk alarm would block publishers.
            "disk_free_limit.absolute = 50MB\n"
        )
        (self.root / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:
            for path in [self.root, *self.root.rglob("*")]:
                shutil.chown(path, "rabbitmq", "rabbitmq")
        # In the foreground under a process of ours, so a killed node is reaped at once rather
        # than left to init as a zombie; as root, ``runuser`` (which passes SIGTERM on, so the
        # node stops when the harness dies) rather than Debian's ``su`` launcher.
        command = _as_user("rabbitmq", [RABBITMQ_SERVER])
        env = {**self.env, "HOME": RABBITMQ_HOME} if os.geteuid() == 0 else self.env
        self._process = _spawn(command, self.root / "log" / "console.log", env)

        def answers() -> bool:
            if self._process is not None and self._process.poll() is not None:
                log = self.root / "log" / "console.log"
                raise InfraError(f"rabbitmq node {self.node_name} exited:\n{tail(log)}")
            return port_open("127.0.0.1", self.port) and amqp_connects(self.url)

        _wait_until(f"rabbitmq node {self.node_name}", answers)

    def ctl(self, *args: str) -> str:
        return _run(["rabbitmqctl", *args], f"rabbitmqctl {' '.join(args)}", env=self.env)

    def add_vhost(self, name: str) -> str:
        self.ctl("add_vhost", name)
        self.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return self.vhost_url(name)

    def pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.root / "pid").read_text().strip())
        return None

    def queue_depths(self, vhost: str = "/") -> dict[str, int]:
        """Every queue of ``vhost`` and the messages it holds, ready or unacknowledged."""
        return queue_depths(vhost, env=self.env)

    def _running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if self._running():
            self.ctl("stop")
            assert self._process is not None
            self._process.wait(timeout=60)

    def kill(self) -> None:
        """SIGKILL of the node's Erlang VM (its pid file names it)."""
        if self._running():
            _kill_pid(self.pid())
            assert self._process is not None
            self._process.wait(timeout=60)

    def remove(self) -> None:
        with contextlib.suppress(InfraError, subprocess.TimeoutExpired):
            self.stop()
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class OwnMongo:
    """The MongoDB stand-in on a port of its own, on its SQLite engine in ``root``."""

    root: Path
    port: int = field(default_factory=server_port)
    _running: MongoStandin | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._running = start_mongo_standin(
            port=self.port,
            engine="sqlite",
            path=self.root / "mongo.sqlite3",
            log_file=self.root / "mongo.log",
        )

    def stop(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.stop()

    def kill(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.process.kill()
            running.process.wait(timeout=30)

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def tail(path: Path, lines: int = 40) -> str:
    try:
        handle: IO[str]
        with path.open(errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return "(no log)"
