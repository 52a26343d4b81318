"""Group fan-out through the realtime gateway against bare Socket.IO servers, in one run.

The same Node load generator (``load.mjs``, socket.io-client, transports ``["websocket"]``) runs
against each target in turn with the same parameters: ``--receivers`` receivers and
``--senders`` senders in one group conversation, each sender keeping ``--inflight``
``message:send`` acks outstanding for ``--duration`` seconds. Targets:

- ``fleet``: the whole fleet (``e2e.fleet.RunningFleet``: auth, chat, 2 gateways, workers,
  nginx) in an ``IsolatedInfra`` namespace of its own, through nginx's public origin. Users are
  made known to chat as auth does it (``user.registered`` envelopes, confirmed), the group is
  created through ``POST /api/chat`` (retried while chat answers 422 for users it has not
  replicated yet), tokens are minted with the run's secret.
- ``python``: ``bare_python_server.py``, a python-socketio room broadcast (same venv, aiohttp,
  uvloop, compression off as in the gateway).
- ``node``: ``node_server.mjs``, the same broadcast on socket.io 4.8.
- ``seed``: ``seed_server.mjs``, one Node process built the way the seed describes: socket.io
  4.8, node-postgres and amqplib. Each send is one transaction (conversation row locked, the
  ``clientMessageId`` checked, the message inserted with the next seq), acked after the commit,
  broadcast to the room and published as a persistent ``message.created`` on a confirm channel
  to a durable queue nobody consumes. It runs in a Postgres database and a RabbitMQ vhost of
  its own (``bench_gateway_seed_<hex>``, ``bench-gateway-seed-<hex>``, made and dropped with
  ``devstack.infra``).

CPU is utime+stime from /proc of the target's processes only (for the fleet: every process the
fleet started, gateways, chat, nginx and the rest; for the seed: its one Node process), between
the generator's ``start`` and ``end`` lines; the shared servers (the local RabbitMQ node, every
Postgres process, Redis) are measured apart over the same window and printed for the fleet and
the seed, which both use them. The generator's own CPU is reported apart and never counted for
a target. RSS per socket = (VmRSS sum with every socket connected - before the generator
started) / sockets. After the load, the fleet's queues are polled (``rabbitmqctl list_queues``)
until every one is empty (at most ``--drain-timeout`` seconds), and chat's and the workers'
``/metrics`` say how many deliveries their consumers retried or dead-lettered in the run.
Everything started here is stopped by its own pid, and the fleet's namespace
and the seed's database and vhost removed, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from devstack.infra import (
    amqp_url_for_vhost,
    create_database,
    create_vhost,
    delete_vhost,
    drop_database,
    ensure_running,
    queue_depths,
)
from devstack.isolation import (
    POSTGRES_ADMIN_URL,
    RABBITMQ_URL,
    REDIS_URL,
    IsolatedInfra,
    free_port,
)
from devstack.user_events import registration_envelopes
from e2e.clients import mint_token
from e2e.fleet import RunningFleet
from servicekit.amqp.connection import connect
from servicekit.amqp.publisher import ConfirmedPublisher

if TYPE_CHECKING:  # mypy knows bench/ as the package ``bench``
    from bench import process_stats
else:  # run as ``python bench/gateway/run.py``: bench/gateway/ is on sys.path, bench/ is not
    sys.path.append(str(Path(__file__).resolve().parent.parent))
    import process_stats

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node") or "node"
REPLICATION_WAIT_S = 30.0
START_TIMEOUT_S = 30.0
TARGETS = ("fleet", "python", "node", "seed")
SERVER_COMMANDS = {  # the bare servers: each takes <port> first, then its own arguments
    "python": [sys.executable, str(HERE / "bare_python_server.py")],
    "node": [NODE, str(HERE / "node_server.mjs")],
    "seed": [NODE, str(HERE / "seed_server.mjs")],
}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# The machine's shared servers, measured apart from the target's own processes: RabbitMQ's
# node, every PostgreSQL process and Redis (only the bench uses them while it runs).
SHARED_SERVERS = {
    process_stats.BROKER_COMMAND: "rabbitmq",
    "postgres": "postgres",
    "redis-server": "redis",
}


# --- targets -------------------------------------------------------------------------------


@dataclass(slots=True)
class Target:
    name: str
    url: str
    conversation: str
    senders: list[str]
    receivers: list[str]
    pids: Callable[[], list[int]]  # the target's processes (re-read: the fleet may fork)
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def bare_server(
    name: str, options: argparse.Namespace, args: Sequence[str] = ()
) -> AsyncIterator[Target]:
    port = free_port()
    command = [*SERVER_COMMANDS[name], str(port), *args]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=HERE
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            line = await process.stdout.readline()
        if b"listening" not in line:
            raise RuntimeError(f"{name} server did not start: {line!r}")
        senders = [f"sender{i}" for i in range(options.senders)]
        receivers = [f"receiver{i}" for i in range(options.receivers)]
        yield Target(
            name, f"http://127.0.0.1:{port}", "bench", senders, receivers, lambda: [process.pid]
        )
    finally:
        if process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def seed_target(options: argparse.Namespace) -> AsyncIterator[Target]:
    """``seed_server.mjs`` in a Postgres database and a RabbitMQ vhost of its own, both removed
    at the end (the server stopped first), also on failure or Ctrl-C."""
    with contextlib.redirect_stdout(sys.stderr):
        await asyncio.to_thread(ensure_running, POSTGRES_ADMIN_URL, REDIS_URL, RABBITMQ_URL)
    suffix = secrets.token_hex(5)
    vhost, database = f"bench-gateway-seed-{suffix}", f"bench_gateway_seed_{suffix}"
    database_url = f"{POSTGRES_ADMIN_URL.rpartition('/')[0]}/{database}"
    say(f"seed: database {database}, vhost {vhost}")
    try:
        await asyncio.to_thread(create_vhost, vhost)
        await create_database(POSTGRES_ADMIN_URL, database)
        args = [database_url, amqp_url_for_vhost(RABBITMQ_URL, vhost)]
        async with bare_server("seed", options, args) as target:
            yield target
    finally:
        try:
            await drop_database(POSTGRES_ADMIN_URL, database)
        finally:
            await asyncio.to_thread(delete_vhost, vhost)
        say(f"seed: database {database} and vhost {vhost} removed")


async def register_users(amqp_url: str, ids: list[uuid.UUID]) -> None:
    connection = await connect(amqp_url, "bench-gateway")
    try:
        publisher = await ConfirmedPublisher.open(connection, app_id="bench", window=256)
        envelopes = registration_envelopes(ids)
        await publisher.publish_envelopes(envelopes)
    finally:
        await connection.close()


async def create_group(base_url: str, token: str, others: list[uuid.UUID]) -> str:
    body = {"participantIds": [str(m) for m in others], "title": "bench fan-out", "type": "group"}
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + REPLICATION_WAIT_S
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.post(f"{base_url}/api/chat", json=body, headers=headers) as reply:
                payload = await reply.json(content_type=None)
                if reply.status in (200, 201):
                    return str(payload["conversation"]["id"])
                if reply.status != 422 or time.monotonic() > deadline:
                    raise RuntimeError(f"POST /api/chat: {reply.status} {payload}")
            await asyncio.sleep(0.2)


def fleet_roles(pids: list[int]) -> dict[int, str]:
    """Each fleet process's role: its INSTANCE_ID, or its command name (nginx, honcho)."""
    roles: dict[int, str] = {}
    for pid in pids:
        role = ""
        with contextlib.suppress(OSError):
            for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                if item.startswith(b"INSTANCE_ID="):
                    role = item.split(b"=", 1)[1].decode()
        if not role:
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
                modules = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-m"]
                honcho = any(arg.endswith("honcho") for arg in argv[:2])
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                role = modules[0] if modules else "honcho" if honcho else comm
        roles[pid] = role
    return roles


@contextlib.asynccontextmanager
async def fleet_target(options: argparse.Namespace) -> AsyncIterator[Target]:
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as directory:
        run_dir = Path(directory)
        infra = IsolatedInfra(run_dir=run_dir)
        fleet: RunningFleet | None = None
        try:
            # IsolatedInfra.open/close run event loops of their own: on a thread.
            with contextlib.redirect_stdout(sys.stderr):
                await asyncio.to_thread(infra.open)
            say(f"namespace {infra.namespace}: starting the fleet (2 gateways)")
            fleet = RunningFleet(infra, run_dir, gateways=2)
            limit = options.fleet_send_limit
            fleet.plan = dataclasses.replace(
                fleet.plan,
                extra_env={
                    **fleet.plan.extra_env,
                    "RATE_LIMIT_SEND_PER_SOCKET": limit,
                    "RATE_LIMIT_SEND_PER_USER": limit,
                },
            )
            with contextlib.redirect_stdout(sys.stderr):  # prepare's progress lines
                await asyncio.to_thread(fleet.start)
            plan = fleet.plan
            ids = [uuid.uuid4() for _ in range(options.senders + options.receivers)]
            await register_users(plan.rabbitmq_url, ids)
            tokens = [mint_token(plan, user_id=user_id).token for user_id in ids]
            conversation = await create_group(fleet.public_url, tokens[0], ids[1:])
            say(f"fleet ready: group {conversation} of {len(ids)} users")
            me = os.getpid()

            def pids() -> list[int]:
                return process_stats.descendants(me, exclude=set(options.exclude))

            metrics = [
                f"http://127.0.0.1:{port}/metrics"
                for service in ("chat", "workers")
                for port in plan.service_ports[service]
            ]
            yield Target(
                "fleet",
                fleet.public_url,
                conversation,
                tokens[: options.senders],
                tokens[options.senders :],
                pids,
                {"roles": fleet_roles(pids()), "vhost": infra.namespace, "metrics": metrics},
            )
        finally:
            if fleet is not None:
                await asyncio.to_thread(fleet.stop)
            await asyncio.to_thread(infra.close)
            say(f"namespace {infra.namespace} removed")


# --- one measurement -----------------------------------------------------------------------


def write_tokens(target: Target) -> str:
    handle, name = tempfile.mkstemp(prefix="bench-gateway-tokens-", suffix=".json")
    with os.fdopen(handle, "w") as file:
        json.dump({"senders": target.senders, "receivers": target.receivers}, file)
    return name


def growth_by_role(
    before: Mapping[int, float], after: Mapping[int, float], roles: dict[int, str], default: str
) -> dict[str, float]:
    """How much each role's processes grew between two samples (CPU seconds, KiB)."""
    grown: dict[str, float] = {}
    for pid, value in after.items():
        role = roles.get(pid, default)
        grown[role] = grown.get(role, 0.0) + value - before.get(pid, 0.0)
    return grown


async def measure(target: Target, options: argparse.Namespace) -> dict[str, Any]:
    tokens_file = write_tokens(target)
    base_pids = target.pids()
    rss_before_by_pid = {pid: process_stats.rss_kib(pid) for pid in base_pids}
    rss_before = sum(rss_before_by_pid.values())
    command = [
        NODE,
        str(HERE / "load.mjs"),
        "--url",
        target.url,
        "--tokens",
        tokens_file,
        "--conversation",
        target.conversation,
        "--duration",
        str(options.duration),
        "--inflight",
        str(options.inflight),
        "--grace",
        str(options.grace),
        "--rate",
        str(options.rate),
        *(["--join"] if options.join else []),
    ]
    load = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, cwd=HERE)
    options.exclude = [load.pid]
    sample: dict[str, Any] = {}
    result: dict[str, Any] = {}
    try:
        assert load.stdout is not None
        async with asyncio.timeout(options.duration + options.grace + 120):
            async for raw in load.stdout:
                line = json.loads(raw)
                if line["phase"] == "connected":
                    pids = target.pids()
                    sample["rss_connected_by_pid"] = {
                        pid: process_stats.rss_kib(pid) for pid in pids
                    }
                    sample["rss_connected"] = sum(sample["rss_connected_by_pid"].values())
                elif line["phase"] == "start":
                    sample["pids"] = pids = target.pids()
                    sample["cpu_before"] = process_stats.cpu_of(pids)
                    sample["servers"] = process_stats.pids_by_command(SHARED_SERVERS)
                    sample["servers_before"] = process_stats.cpu_of(sample["servers"])
                    sample["wall"] = time.perf_counter()
                elif line["phase"] == "end":
                    sample["wall"] = time.perf_counter() - sample["wall"]
                    sample["cpu_after"] = process_stats.cpu_of(sample["pids"])
                    # Backends opened during the run count whole (a pool that grew under load).
                    sample["servers"] |= process_stats.pids_by_command(SHARED_SERVERS)
                    sample["servers_after"] = process_stats.cpu_of(sample["servers"])
                    sample["rss_end"] = sum(process_stats.rss_kib(pid) for pid in target.pids())
                elif line["phase"] == "result":
                    result = line
            await load.wait()
    finally:
        if load.returncode is None:
            load.kill()
            await load.wait()
        os.unlink(tokens_file)
        options.exclude = []
    if load.returncode != 0 or not result:
        raise RuntimeError(f"load.mjs failed against {target.name} ({load.returncode})")
    drained = await drain(target, options) if "vhost" in target.extra else {}
    sockets = options.senders + options.receivers
    cpu = process_stats.cpu_spent(sample["cpu_before"], sample["cpu_after"])
    roles = target.extra.get("roles", {})
    per_role = growth_by_role(sample["cpu_before"], sample["cpu_after"], roles, target.name)
    rss_per_role = {
        role: kib / sockets
        for role, kib in growth_by_role(
            rss_before_by_pid, sample["rss_connected_by_pid"], roles, target.name
        ).items()
    }
    deliveries = result["deliveries"] or 1
    servers = growth_by_role(
        sample["servers_before"], sample["servers_after"], sample["servers"], "server"
    )
    return {
        "target": target.name,
        **{key: value for key, value in result.items() if key != "phase"},
        "rssPerSocketKiB": (sample["rss_connected"] - rss_before) / sockets,
        "rssBeforeMiB": rss_before / 1024,
        "rssConnectedMiB": sample["rss_connected"] / 1024,
        "rssEndMiB": sample["rss_end"] / 1024,
        "targetCpuSeconds": cpu,
        "targetCpuShare": cpu / sample["wall"],
        "cpuUsPerDelivery": cpu / deliveries * 1e6,
        "brokerCpuSeconds": servers.get("rabbitmq", 0.0),
        "serverCpuSeconds": {name: servers.get(name, 0.0) for name in SHARED_SERVERS.values()},
        "cpuByRole": dict(sorted(per_role.items())),
        "rssKiBPerSocketByRole": dict(sorted(rss_per_role.items())),
        "loadCpuShare": result["loadCpuSeconds"] / sample["wall"],
        **drained,
    }


async def consumer_outcomes(urls: list[str]) -> dict[str, float]:
    """``amqp_messages_consumed_total`` by outcome, summed over the services' /metrics."""
    totals: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        for url in urls:
            async with session.get(url) as reply:
                text = await reply.text()
            for line in text.splitlines():
                if line.startswith("amqp_messages_consumed_total{"):
                    labels, _, value = line.rpartition(" ")
                    outcome = labels.split('outcome="', 1)[1].split('"', 1)[0]
                    totals[outcome] = totals.get(outcome, 0.0) + float(value)
    return totals


async def drain(target: Target, options: argparse.Namespace) -> dict[str, Any]:
    """After the load: how many messages the fleet's queues held, and how long until every
    queue was empty (polled each second, at most ``--drain-timeout``), with the consumers'
    retried and dead-lettered counts of the whole run."""
    started = time.perf_counter()
    depths = await asyncio.to_thread(queue_depths, target.extra["vhost"])
    waiting = sum(depths.values())
    while sum(depths.values()) and time.perf_counter() - started < options.drain_timeout:
        await asyncio.sleep(1.0)
        depths = await asyncio.to_thread(queue_depths, target.extra["vhost"])
    left = sum(depths.values())
    outcomes = await consumer_outcomes(target.extra["metrics"])
    return {
        "queuedAtEnd": waiting,
        "drainSeconds": None if left else time.perf_counter() - started,
        "queuedAfterDrain": {name: count for name, count in depths.items() if count},
        "retried": int(outcomes.get("retried", 0)),
        "deadLettered": int(outcomes.get("dead_lettered", 0)),
    }


# --- report --------------------------------------------------------------------------------

COLUMNS = [
    ("target", "target", "{}"),
    ("sends", "sends", "{:,}"),
    ("sends/s", "sendsPerSecond", "{:,.0f}"),
    ("deliveries/s", "deliveriesPerSecond", "{:,.0f}"),
    ("p50 ms", "latencyP50Ms", "{:.1f}"),
    ("p99 ms", "latencyP99Ms", "{:.1f}"),
    ("ack p50 ms", "ackP50Ms", "{:.1f}"),
    ("lost", "lost", "{:,}"),
    ("dup", "duplicates", "{:,}"),
    ("limited", "rateLimited", "{:,}"),
    ("errors", "errors", "{:,}"),
    ("RSS KiB/socket", "rssPerSocketKiB", "{:.1f}"),
    ("target cpu", "targetCpuShare", "{:.0%}"),
    ("cpu us/delivery", "cpuUsPerDelivery", "{:.1f}"),
    ("broker cpu s", "brokerCpuSeconds", "{:.2f}"),
    ("loadgen cpu", "loadCpuShare", "{:.0%}"),
]
RATIOS = [
    ("sends/s", "sendsPerSecond"),
    ("deliveries/s", "deliveriesPerSecond"),
    ("p50 latency", "latencyP50Ms"),
    ("p99 latency", "latencyP99Ms"),
    ("RSS/socket", "rssPerSocketKiB"),
    ("cpu/delivery", "cpuUsPerDelivery"),
]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def report(results: list[dict[str, Any]]) -> str:
    rows = [[title for title, _, _ in COLUMNS]]
    for result in results:
        rows.append(
            ["" if result.get(key) is None else fmt.format(result[key]) for _, key, fmt in COLUMNS]
        )
    out = [table(rows)]
    by_name = {result["target"]: result for result in results}
    fleet = by_name.get("fleet")
    if fleet is not None:
        ratio_rows = [["fleet over", *(title for title, _ in RATIOS)]]
        for other in ("python", "node", "seed"):
            if other in by_name:
                cells = []
                for _, key in RATIOS:
                    a, b = fleet.get(key), by_name[other].get(key)
                    cells.append(f"{a / b:.2f}x" if a is not None and b else "")
                ratio_rows.append([other, *cells])
        if len(ratio_rows) > 1:
            out.append(table(ratio_rows))
        out.append(
            "fleet cpu by process (s): "
            + ", ".join(f"{role} {s:.2f}" for role, s in fleet["cpuByRole"].items())
            + "; shared servers: "
            + ", ".join(f"{name} {s:.2f}" for name, s in fleet["serverCpuSeconds"].items())
        )
        out.append(per_message_line(fleet))
        drained = (
            f"all empty {fleet['drainSeconds']:.1f} s later"
            if fleet.get("drainSeconds") is not None
            else f"NOT empty after the drain timeout: {fleet.get('queuedAfterDrain')}"
        )
        out.append(
            f"fleet queues after the load: {fleet.get('queuedAtEnd', 0):,} messages waiting, "
            f"{drained}; consumers retried {fleet.get('retried', 0)}, "
            f"dead-lettered {fleet.get('deadLettered', 0)}"
        )
        out.append(
            "fleet RSS growth per socket by process (KiB): "
            + ", ".join(f"{role} {kib:.1f}" for role, kib in fleet["rssKiBPerSocketByRole"].items())
        )
    seed = by_name.get("seed")
    if seed is not None:
        out.append(seed_line(seed))
    return "\n".join(out)


def seed_line(seed: dict[str, Any]) -> str:
    """The shared servers' CPU while the seed ran (its Postgres and RabbitMQ work is there, not
    in its target cpu), in seconds and per stored message, as the fleet's line shows them."""
    sends = seed["sends"] or 1
    servers = seed["serverCpuSeconds"]
    return (
        "seed: shared servers (s): "
        + ", ".join(f"{name} {s:.2f}" for name, s in servers.items())
        + f"; cpu ms per message: seed process {seed['targetCpuSeconds'] / sends * 1000:.2f}, "
        + ", ".join(f"{name} {s / sends * 1000:.2f}" for name, s in servers.items())
    )


def per_message_line(fleet: dict[str, Any]) -> str:
    """CPU per stored message outside the gateways and nginx: what a message costs before and
    besides its fan-out (chat, workers, the MongoDB stand-in, auth, and the shared servers)."""
    sends = fleet["sends"] or 1
    outside = {
        role: seconds
        for role, seconds in fleet["cpuByRole"].items()
        if not role.startswith("gateway") and role not in ("nginx", "honcho")
    }
    outside.update(fleet["serverCpuSeconds"])
    parts = ", ".join(f"{role} {s / sends * 1000:.2f}" for role, s in sorted(outside.items()))
    total = sum(outside.values()) / sends * 1000
    return f"cpu ms per message outside the gateways: {total:.2f} ({parts})"


def target_named(
    name: str, options: argparse.Namespace
) -> contextlib.AbstractAsyncContextManager[Target]:
    if name == "fleet":
        return fleet_target(options)
    if name == "seed":
        return seed_target(options)
    return bare_server(name, options)


async def run(options: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for name in options.targets:
        say(f"--- {name}")
        async with target_named(name, options) as target:
            results.append(await measure(target, options))
        say(json.dumps(results[-1]))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, default=200)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--inflight", type=int, default=4, help="sends in flight per sender")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to wait for stragglers")
    parser.add_argument("--rate", type=float, default=0.0, help="sends/s per sender; 0: no cap")
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help=f"comma-separated of {', '.join(TARGETS)}"
    )
    parser.add_argument(
        "--fleet-send-limit",
        default="1000:1000",
        help="the fleet's RATE_LIMIT_SEND_PER_SOCKET and _PER_USER (<burst>:<per second>); "
        "the default lifts them so the fleet runs at its capacity like the bare servers; "
        "the production default is 10:5 per socket",
    )
    parser.add_argument(
        "--join",
        action="store_true",
        help="receivers open the conversation (conversation:join) before sending starts, as an "
        "app showing it does; without it the fleet also notifies every receiver of every message",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=120.0,
        help="seconds to wait after the load for the fleet's queues to empty",
    )
    parser.add_argument("--json", action="store_true", help="the results as JSON on stdout")
    options = parser.parse_args()
    options.targets = [name for name in options.targets.split(",") if name]
    options.exclude = []
    unknown = set(options.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if options.senders + options.receivers > 500:
        parser.error("chat caps a conversation at 500 participants")
    print(
        f"receivers={options.receivers} senders={options.senders} inflight={options.inflight} "
        f"duration_s={options.duration} grace_s={options.grace} rate={options.rate or 'none'} "
        f"fleet_send_limit={options.fleet_send_limit} join={options.join} "
        f"cores={os.cpu_count()} python={sys.version.split()[0]}",
        flush=True,
    )
    try:
        results = asyncio.run(run(options))
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    print(json.dumps(results, indent=2) if options.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
