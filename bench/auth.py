"""Auth logins against the bcrypt bound, and the event loop's lag during a login storm.

A login is one bcrypt check (``asyncio.to_thread(bcrypt.checkpw, ...)`` at ``BCRYPT_ROUNDS``)
plus a few round trips (Redis rate limits, a Postgres lookup and a session insert, a MongoDB
profile read), so the fleet cannot log anyone in faster than the machine checks bcrypt hashes.
This script measures that bound and the real service against it, in one run:

1. the ceiling: ``bcrypt.checkpw`` at the service's cost factor (``--rounds``, 12 as the service
   defaults to) in a loop on one thread for 2 s, then on one thread per core at once for 3 s
   (bcrypt releases the GIL). One core's rate is the one thread's checks per CPU-second of that
   thread (so other load on the machine does not lower it); the bound is that times the cores.
   The threaded run's checks per wall second show what the machine, as busy as it was, gave;
2. the real auth service, ``python -m auth`` as a subprocess, with its own Postgres database,
   RabbitMQ vhost, Redis key prefix and MongoDB stand-in (``devstack.isolation.IsolatedInfra``),
   migrated with ``python -m auth migrate``, with ``--users`` accounts registered through the API;
3. the storm: ``--clients`` concurrent clients logging in (successfully) for ``--duration``
   seconds, or ``--count`` logins; logins/s, latency, errors, the ratio to the bound, and the
   auth process's CPU use (``/proc/<pid>/stat``);
4. the lag: a probe ``GET /healthz`` every ``--probe-interval`` ms on a connection of its own,
   before the storm (baseline) and during it. bcrypt runs in threads, so the event loop that
   answers ``/healthz`` should stay free; the probe shows whether it does.

The ceiling is measured once the service is up with its users registered, just before the
storm, so both see the machine in about the same state. Everything is removed at the end (the
process by its own pid, then the namespace), also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import bcrypt

from devstack.isolation import IsolatedInfra, free_port

if TYPE_CHECKING:  # mypy knows bench/ as the package ``bench``; the script runs from bench/
    from bench import isolated_run, process_stats, service_process, tables
    from bench.progress import say
else:
    import isolated_run
    import process_stats
    import service_process
    import tables
    from progress import say

REPO_ROOT = Path(__file__).resolve().parent.parent
LOGIN_PATH = "/api/auth/login"
REGISTER_PATH = "/api/auth/register"
REQUEST_TIMEOUT_S = 120.0
SINGLE_THREAD_S = 2.0
THREADED_S = 3.0
NO_LIMIT = "1000000"  # the storm's logins all come from one IP and reuse a few accounts


@dataclass(frozen=True, slots=True)
class Options:
    rounds: int
    duration: float
    count: int | None
    clients: int
    users: int
    probe_interval: float
    baseline: float
    json: bool


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's count."""
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# --- CPU accounting -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """Wall time of a phase and the CPU time spent in it (per process, and the machine's)."""

    seconds: float
    processes: dict[str, float | None]  # CPU seconds per watched process; None: unreadable
    machine_busy: float | None  # share of all cores busy, every process included

    def share(self, name: str) -> float | None:
        cpu = self.processes.get(name)
        return None if cpu is None or self.seconds <= 0 else cpu / self.seconds


class Meter:
    """From creation: wall time, CPU time of the named pids and of this process, machine busy."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._wall = time.perf_counter()
        self._bench = time.process_time()
        self._cpu = {name: process_stats.cpu_seconds(pid) for name, pid in pids.items()}
        self._jiffies = process_stats.machine_jiffies()

    def read(self) -> Usage:
        seconds = time.perf_counter() - self._wall
        processes: dict[str, float | None] = {"bench": time.process_time() - self._bench}
        for name, pid in self._pids.items():
            before, after = self._cpu[name], process_stats.cpu_seconds(pid)
            processes[name] = None if before is None or after is None else after - before
        busy = process_stats.busy_share(self._jiffies, process_stats.machine_jiffies())
        return Usage(seconds, processes, busy)


# --- the ceiling: bcrypt alone --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HashRun:
    threads: int
    hashes: int
    seconds: float  # wall clock, until the last thread's last check ended
    cpu_seconds: float  # CPU time of the hashing threads themselves
    machine_busy: float | None

    @property
    def rate(self) -> float:
        """Checks per wall second: what these threads got done on the machine as it was."""
        return self.hashes / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_rate(self) -> float:
        """Checks per CPU-second: one core's rate when it is all ours, whoever else runs."""
        return self.hashes / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Ceiling:
    rounds: int
    cores: int
    single: HashRun
    threaded: HashRun

    @property
    def per_core(self) -> float:
        """bcrypt checks one core does per second (per CPU-second of the one-thread loop)."""
        return self.single.cpu_rate

    @property
    def bound(self) -> float:
        """One core's rate times the cores: what perfect scaling on an idle machine gives."""
        return self.per_core * self.cores


def check_until(deadline: float, password: bytes, hashed: bytes) -> tuple[int, float, float]:
    """``checkpw`` in a loop until ``deadline``; how many, when the last ended, its CPU time."""
    done, cpu = 0, time.thread_time()
    while time.perf_counter() < deadline:
        bcrypt.checkpw(password, hashed)
        done += 1
    return done, time.perf_counter(), time.thread_time() - cpu


def hash_run(threads: int, seconds: float, password: bytes, hashed: bytes) -> HashRun:
    jiffies = process_stats.machine_jiffies()
    started = time.perf_counter()
    deadline = started + seconds
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bcrypt") as pool:
        futures = [pool.submit(check_until, deadline, password, hashed) for _ in range(threads)]
        results = [future.result() for future in futures]
    ended = max(end for _, end, _ in results)
    busy = process_stats.busy_share(jiffies, process_stats.machine_jiffies())
    hashes = sum(done for done, _, _ in results)
    cpu = sum(cpu for _, _, cpu in results)
    return HashRun(threads, hashes, ended - started, cpu, busy)


def measure_ceiling(rounds: int, cores: int) -> Ceiling:
    password = secrets.token_urlsafe(12).encode()
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds))
    single = hash_run(1, SINGLE_THREAD_S, password, hashed)
    threaded = hash_run(cores, THREADED_S, password, hashed)
    return Ceiling(rounds, cores, single, threaded)


# --- the auth service -----------------------------------------------------------------------


def service_env(
    infra: IsolatedInfra, run_dir: Path, database_url: str, rounds: int
) -> dict[str, str]:
    """The environment ``devstack`` gives auth in this namespace, plus the bench's settings."""
    port = free_port()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **infra.fleet_plan(run_dir).service_env("auth", port),
        "DATABASE_URL": database_url,
        "BCRYPT_ROUNDS": str(rounds),
        "LOGIN_MAX_ATTEMPTS_PER_IP": NO_LIMIT,
        "LOGIN_MAX_FAILURES_PER_ACCOUNT": NO_LIMIT,
        "REGISTER_MAX_PER_IP": NO_LIMIT,
        "LOG_LEVEL": "warning",
        "SHUTDOWN_TIMEOUT": "2",
    }


# --- load -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    password: str


async def register_users(
    session: aiohttp.ClientSession, base_url: str, count: int, concurrency: int
) -> list[Account]:
    password = secrets.token_urlsafe(16)
    accounts = [Account(f"bench{index:04d}", password) for index in range(count)]
    pending = iter(accounts)

    async def register() -> None:
        for account in pending:
            body = {
                "email": f"{account.username}@bench.example",
                "username": account.username,
                "password": account.password,
            }
            async with session.post(f"{base_url}{REGISTER_PATH}", json=body) as response:
                text = await response.text()
                if response.status != 201:
                    raise RuntimeError(f"register {account.username}: {response.status} {text}")

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, count)):
            group.create_task(register())
    return accounts


@dataclass(slots=True)
class Probe:
    """``GET /healthz`` every ``interval`` seconds on its own connection, latencies recorded."""

    session: aiohttp.ClientSession
    url: str
    interval: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        next_at = time.perf_counter()
        while not stop.is_set():
            started = time.perf_counter()
            try:
                async with self.session.get(self.url) as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            if ok:
                self.latencies.append(time.perf_counter() - started)
            else:
                self.errors += 1
            next_at = max(next_at + self.interval, time.perf_counter())  # late: no catch-up
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), next_at - time.perf_counter())


@dataclass(frozen=True, slots=True)
class ProbeResult:
    phase: str
    latencies: list[float]
    errors: int
    usage: Usage


@contextlib.asynccontextmanager
async def probing(
    session: aiohttp.ClientSession, base_url: str, interval: float
) -> AsyncIterator[Probe]:
    probe = Probe(session, f"{base_url}/healthz", interval)
    stop_probe = asyncio.Event()
    task = asyncio.create_task(probe.run(stop_probe))
    try:
        yield probe
    finally:
        stop_probe.set()
        await task


@dataclass(frozen=True, slots=True)
class Storm:
    logins: int
    errors: dict[str, int]
    latencies: list[float]
    usage: Usage

    @property
    def rate(self) -> float:
        return self.logins / self.usage.seconds if self.usage.seconds > 0 else 0.0

    def per_auth_cpu(self, ceiling: Ceiling) -> float | None:
        """Logins per CPU-second the auth process got, over bcrypt checks per CPU-second: 1.0
        means the process spent all its CPU in bcrypt; other load on the machine cancels out."""
        cpu = self.usage.processes.get("auth")
        if not cpu or ceiling.per_core <= 0:
            return None
        return self.logins / cpu / ceiling.per_core


async def login_storm(
    session: aiohttp.ClientSession,
    base_url: str,
    accounts: list[Account],
    options: Options,
    meter: Meter,
) -> Storm:
    """``clients`` loops of logins until the duration ends (or ``count`` are sent); every login
    sent is awaited, and the time runs until the last one answered."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    numbers = iter(range(options.count if options.count is not None else sys.maxsize))
    deadline = time.perf_counter() + options.duration
    url = f"{base_url}{LOGIN_PATH}"

    async def client() -> None:
        for number in numbers:
            if options.count is None and time.perf_counter() >= deadline:
                return
            account = accounts[number % len(accounts)]
            body = {"username": account.username, "password": account.password}
            started = time.perf_counter()
            try:
                async with session.post(url, json=body) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError as error:
                errors[type(error).__name__] += 1
                continue
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors[str(status)] += 1

    async with asyncio.TaskGroup() as group:
        for _ in range(options.clients):
            group.create_task(client())
    return Storm(len(latencies), dict(errors), latencies, meter.read())


# --- the run --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Results:
    ceiling: Ceiling
    users: int
    storm: Storm
    probes: list[ProbeResult]


async def measure_service(
    auth: service_process.ServiceProcess, options: Options, pids: dict[str, int], cores: int
) -> Results:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    login_connector = aiohttp.TCPConnector(limit=options.clients)
    probe_connector = aiohttp.TCPConnector(limit=1)  # never queued behind a login
    async with (
        aiohttp.ClientSession(connector=login_connector, timeout=timeout) as logins,
        aiohttp.ClientSession(connector=probe_connector, timeout=timeout) as probes,
    ):
        await service_process.wait_ready(probes, auth)
        say(f"auth ready; registering {options.users} users")
        accounts = await register_users(logins, auth.base_url, options.users, options.clients)
        say(f"measuring bcrypt at cost {options.rounds} (1 thread, then {cores})")
        ceiling = await asyncio.to_thread(measure_ceiling, options.rounds, cores)
        say(f"probing /healthz for {options.baseline:g} s before the storm")
        meter = Meter(pids)
        async with probing(probes, auth.base_url, options.probe_interval) as baseline:
            await asyncio.sleep(options.baseline)
        before = ProbeResult("before the storm", baseline.latencies, baseline.errors, meter.read())
        say(f"login storm: {options.clients} clients")
        meter = Meter(pids)
        async with probing(probes, auth.base_url, options.probe_interval) as during:
            storm = await login_storm(logins, auth.base_url, accounts, options, meter)
        during_result = ProbeResult(
            "during the storm", during.latencies, during.errors, storm.usage
        )
    return Results(ceiling, len(accounts), storm, [before, during_result])


async def run_isolated(infra: IsolatedInfra, run_dir: Path, options: Options) -> Results:
    isolated_run.cancel_on_sigterm()
    database_url = await infra.create_database("auth")
    env = service_env(infra, run_dir, database_url, options.rounds)
    say("migrating the bench database")
    # cwd: never bench/, where ``-m auth`` would find this script first
    await service_process.migrate("auth", env, REPO_ROOT)
    pids = {} if infra.mongo is None else {"mongo": infra.mongo.pid}
    async with service_process.running_service("auth", env, REPO_ROOT, run_dir) as auth:
        pids = {"auth": auth.process.pid, **pids}
        return await measure_service(auth, options, pids, usable_cores())


# --- output ---------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "" if value is None else f"{value * 1000:.1f}"


def ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def ceiling_table(ceiling: Ceiling) -> str:
    header: tuple[str, ...] = (
        f"bcrypt.checkpw, cost {ceiling.rounds}",
        "hashes",
        "seconds",
        "hashes/s",
        "cpu s",
        "hashes/cpu-s",
        "machine cpu",
    )
    rows = [
        (
            f"{run.threads} thread{'s' if run.threads > 1 else ''}",
            str(run.hashes),
            f"{run.seconds:.3f}",
            f"{run.rate:.2f}",
            f"{run.cpu_seconds:.3f}",
            f"{run.cpu_rate:.2f}",
            tables.share(run.machine_busy),
        )
        for run in (ceiling.single, ceiling.threaded)
    ]
    bound = (f"bound: 1 core x {ceiling.cores} cores", "", "", f"{ceiling.bound:.2f}", "", "", "")
    return tables.render(header, [*rows, bound])


def storm_table(results: Results) -> str:
    storm, ceiling = results.storm, results.ceiling
    usage = storm.usage
    header: tuple[str, ...] = (
        "login storm",
        "logins",
        "errors",
        "seconds",
        "logins/s",
        "/bound",
        f"/{ceiling.cores} threads",
        "/auth cpu",
        "p50 ms",
        "p99 ms",
        "auth cpu",
        "mongo cpu",
        "bench cpu",
        "machine cpu",
    )
    row = (
        f"{results.users} users",
        str(storm.logins),
        str(sum(storm.errors.values())),
        f"{usage.seconds:.3f}",
        f"{storm.rate:.2f}",
        f"{storm.rate / ceiling.bound:.2f}",
        f"{storm.rate / ceiling.threaded.rate:.2f}",
        ratio(storm.per_auth_cpu(ceiling)),
        ms(tables.percentile(storm.latencies, 50)),
        ms(tables.percentile(storm.latencies, 99)),
        tables.share(usage.share("auth")),
        tables.share(usage.share("mongo")),
        tables.share(usage.share("bench")),
        tables.share(usage.machine_busy),
    )
    return tables.render(header, [row])


def probe_table(probes: list[ProbeResult], interval: float) -> str:
    header: tuple[str, ...] = (
        f"GET /healthz every {interval * 1000:g} ms",
        "samples",
        "errors",
        "p50 ms",
        "p99 ms",
        "max ms",
        "auth cpu",
        "machine cpu",
    )
    rows = [
        (
            probe.phase,
            str(len(probe.latencies)),
            str(probe.errors),
            ms(tables.percentile(probe.latencies, 50)),
            ms(tables.percentile(probe.latencies, 99)),
            ms(max(probe.latencies, default=None)),
            tables.share(probe.usage.share("auth")),
            tables.share(probe.usage.machine_busy),
        )
        for probe in probes
    ]
    return tables.render(header, rows)


def describe(options: Options, cores: int) -> dict[str, object]:
    return {
        "bcrypt_rounds": options.rounds,
        "cores": cores,
        "clients": options.clients,
        "users": options.users,
        "duration_s": options.duration if options.count is None else None,
        "count": options.count,
        "probe_interval_ms": options.probe_interval * 1000,
        "python": sys.version.split()[0],
    }


def in_ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


def latency_summary(latencies: list[float]) -> dict[str, float | None]:
    return {
        "p50_ms": in_ms(tables.percentile(latencies, 50)),
        "p99_ms": in_ms(tables.percentile(latencies, 99)),
        "max_ms": in_ms(max(latencies, default=None)),
    }


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "seconds": usage.seconds,
        "cpu_share": {name: usage.share(name) for name in usage.processes},
        "machine_busy": usage.machine_busy,
    }


def as_json(options: Options, results: Results) -> dict[str, Any]:
    ceiling, storm = results.ceiling, results.storm
    runs = {"one_thread": ceiling.single, "threads": ceiling.threaded}
    return {
        **describe(options, ceiling.cores),
        "bcrypt": {
            **{
                name: {
                    "threads": run.threads,
                    "hashes": run.hashes,
                    "seconds": run.seconds,
                    "hashes_per_s": run.rate,
                    "cpu_seconds": run.cpu_seconds,
                    "hashes_per_cpu_s": run.cpu_rate,
                    "machine_busy": run.machine_busy,
                }
                for name, run in runs.items()
            },
            "per_core_hashes_per_s": ceiling.per_core,
            "bound_hashes_per_s": ceiling.bound,
        },
        "storm": {
            "logins": storm.logins,
            "errors": storm.errors,
            "logins_per_s": storm.rate,
            "ratio_to_bound": storm.rate / ceiling.bound,
            "ratio_to_threads": storm.rate / ceiling.threaded.rate,
            "ratio_to_auth_cpu": storm.per_auth_cpu(ceiling),
            **latency_summary(storm.latencies),
            **usage_json(storm.usage),
        },
        "healthz_probe": [
            {
                "phase": probe.phase,
                "samples": len(probe.latencies),
                "errors": probe.errors,
                **latency_summary(probe.latencies),
                **usage_json(probe.usage),
            }
            for probe in results.probes
        ],
    }


def report(options: Options, results: Results) -> None:
    if options.json:
        print(json.dumps(as_json(options, results), indent=2))
        return
    context = describe(options, results.ceiling.cores)
    print(" ".join(f"{key}={value}" for key, value in context.items() if value is not None))
    print(ceiling_table(results.ceiling))
    print(storm_table(results))
    if results.storm.errors:
        print("login errors:", ", ".join(f"{k}: {v}" for k, v in results.storm.errors.items()))
    print(probe_table(results.probes, options.probe_interval))
    print(
        "bound: bcrypt checks per CPU-second of one thread (one core's rate) times the cores; "
        "/bound: logins/s over it"
    )
    print(
        f"/{results.ceiling.cores} threads: logins/s over the hashes/s those threads reached "
        "on the machine as it was; /auth cpu: logins per CPU-second of the auth process over "
        "one core's bcrypt rate (1.00: the process did nothing but bcrypt)"
    )
    print(
        "auth, mongo (stand-in), bench cpu: that process's CPU time per wall second "
        f"(100% = one core); machine cpu: share of all {results.ceiling.cores} cores busy "
        "(every process)"
    )


# --- entry point ----------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=12, help="bcrypt cost (BCRYPT_ROUNDS)")
    parser.add_argument("--duration", type=float, default=10.0, help="storm seconds")
    parser.add_argument("--count", type=int, help="logins to send instead of --duration")
    parser.add_argument("--clients", type=int, default=16, help="concurrent login clients")
    parser.add_argument("--users", type=int, default=20, help="accounts the logins rotate over")
    parser.add_argument("--probe-interval", type=float, default=50.0, help="ms between probes")
    parser.add_argument("--baseline", type=float, default=2.0, help="probe seconds before")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not 4 <= args.rounds <= 16:
        parser.error("--rounds must be 4 to 16 (what the auth service accepts)")
    if min(args.clients, args.users) < 1 or (args.count is not None and args.count < 1):
        parser.error("--clients, --users and --count must be at least 1")
    if min(args.duration, args.probe_interval, args.baseline) <= 0:
        parser.error("--duration, --probe-interval and --baseline must be above 0")
    return Options(
        rounds=args.rounds,
        duration=args.duration,
        count=args.count,
        clients=args.clients,
        users=args.users,
        probe_interval=args.probe_interval / 1000,
        baseline=args.baseline,
        json=args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    return isolated_run.exit_code_of(
        "auth",
        "vhost, Redis prefix, MongoDB stand-in",
        lambda infra, run_dir: run_isolated(infra, run_dir, options),
        lambda results: report(options, results),
    )


if __name__ == "__main__":
    sys.exit(main())
