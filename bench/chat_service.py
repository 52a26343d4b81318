"""Chat's send path through the queue and its history endpoint, each against its ceilings.

The real chat service runs as a subprocess (``python -m chat``, migrated first with ``python -m
chat migrate``) in a namespace of its own (``devstack.isolation.IsolatedInfra``: Postgres
database, RabbitMQ vhost, Redis key prefix, MongoDB stand-in). Its user directory is filled the
way auth fills it, by publishing ``user.registered`` envelopes; its conversations are created
through its REST API with a bearer token minted with the run's secret. Then, in one run:

1. ceilings, with chat idle: a raw confirmed publish of ``--count`` messages of the same bytes
   as the ``message.send`` envelopes (aio-pika, one confirm-mode channel, ``--window`` in
   flight, through the ``chat`` exchange to a quorum queue of the bench's), and a raw asyncpg
   insert loop of ``--count`` rows shaped like ``messages`` into a scratch copy of that table in
   chat's database, one row per transaction, as many transactions at once as the consumer's
   prefetch (``AMQP_PREFETCH``, 32);
2. the queue path: ``--count`` ``message.send`` envelopes (distinct ``clientMessageId``s, from
   ``--senders`` senders) published with confirms (``ConfirmedPublisher``, same window), timed
   from the first publish until chat's ``messages`` table holds every one of them; once into one
   conversation (every send waits for that conversation's row lock), once spread over
   ``--conversations`` conversations. Meanwhile chat's Postgres connections are sampled: how
   many are in a transaction, and how many of those wait for a lock;
3. history: ``--requests`` ``GET /api/chat/{id}/messages?limit=50`` (the newest page) and as many
   with ``after=<random seq>``, against the repository calls the service makes for them
   (``ChatRepository.page_before`` / ``page_after``, imported from the ``chat`` package) on
   asyncpg: one at a time, then ``--concurrency`` at once; p50/p99 of each, and the query's
   share of the endpoint's.

Every phase also reports the CPU it cost chat, the Postgres backends of chat's database,
RabbitMQ, this process and the whole machine. Everything is removed at the end (the chat
process by its own pid, then the namespace), also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aio_pika
import aiohttp
import asyncpg
from aio_pika.abc import AbstractRobustConnection

from chat.repository import ChatRepository
from contracts import Envelope, encode_envelope, make_envelope, names
from contracts.events import MessageSend
from devstack.isolation import IsolatedInfra, free_port
from devstack.user_events import registration_envelopes
from devstack.waiting import until
from servicekit.amqp.connection import connect
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.redis_store import KeySpace, create_redis
from servicekit.settings import Environment, PlatformSettings, read_platform
from servicekit.tokens import RevocationList, TokenIssuer

if TYPE_CHECKING:  # mypy knows bench/ as the package ``bench``; the script runs from bench/
    from bench import isolated_run, process_stats, service_process, tables
    from bench.progress import say
    from bench.worker_tasks import run_workers
else:
    import isolated_run
    import process_stats
    import service_process
    import tables
    from progress import say
    from worker_tasks import run_workers


SERVICE = "chat"
PHASE_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 30.0
POLL_S = 0.01
PAGE_LIMIT = 50
WARMUP_REQUESTS = 50
RAW_QUEUE = "bench.chat.raw"  # bound on ``chat`` under its own name: chat never sees it
RAW_TABLE = "bench_raw_messages"

RAW_INSERT = (
    f"INSERT INTO {RAW_TABLE} (id, conversation_id, seq, sender_id, client_message_id, "  # noqa: S608
    "content, body_in_mongo, attachments, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
UNPUBLISHED_LEFT = "SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)"
STORED = "SELECT count(*) FROM messages WHERE conversation_id = ANY($1)"
# Polled while the queue path runs: messages stored, and what chat's connections are doing
# (in a transaction, and waiting for a lock: on one conversation, its row lock).
PROGRESS = f"""
    SELECT ({STORED}) AS stored,
           count(*) FILTER (WHERE state <> 'idle') AS in_transaction,
           count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_waits
    FROM pg_stat_activity
    WHERE datname = current_database() AND backend_type = 'client backend'
      AND pid <> pg_backend_pid()
"""  # noqa: S608
CONTENT_TEXT = "The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs. "


@dataclass(frozen=True, slots=True)
class Options:
    count: int
    rounds: int
    senders: int
    conversations: int
    content_bytes: int
    window: int
    requests: int
    concurrency: int
    seed: int
    json: bool


# --- CPU accounting -------------------------------------------------------------------------

CPU_GROUPS = ("chat", "postgres", "rabbitmq", "bench")
BACKENDS = """
    SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND backend_type = 'client backend'
      AND pid <> pg_backend_pid()
"""


@dataclass(frozen=True, slots=True)
class Watch:
    """Whose CPU a phase reports: chat, the Postgres backends serving chat's database (not the
    bench's polling connection), the local broker (shared with whoever else uses it), and this
    process."""

    chat_pid: int
    probe: asyncpg.Connection[asyncpg.Record]
    broker: tuple[int, ...]

    async def snapshot(self) -> dict[str, dict[int, float]]:
        backends = [row["pid"] for row in await self.probe.fetch(BACKENDS)]
        pids = {"chat": [self.chat_pid], "postgres": backends, "rabbitmq": list(self.broker)}
        snapshot = {name: process_stats.cpu_of(group) for name, group in pids.items()}
        snapshot["bench"] = {os.getpid(): time.process_time()}
        return snapshot


@dataclass(frozen=True, slots=True)
class Usage:
    """Wall time of a phase, the CPU seconds of each watched group and of the whole machine."""

    seconds: float
    cpu: dict[str, float | None]  # None: nothing of that group could be read
    machine_cpu: float | None  # CPU seconds of all cores, every process included
    machine_busy: float | None  # share of all cores busy

    def share(self, group: str) -> float | None:
        """CPU seconds per wall second (1.0 = one core)."""
        cpu = self.cpu.get(group)
        return None if cpu is None or self.seconds <= 0 else cpu / self.seconds

    def per_item_ms(self, group: str, items: int) -> float | None:
        cpu = self.machine_cpu if group == "machine" else self.cpu.get(group)
        return None if cpu is None or items <= 0 else cpu / items * 1000


class Meter:
    """Wall time, CPU of the watched processes and the machine's, from ``start`` to ``read``."""

    def __init__(self, watch: Watch, before: dict[str, dict[int, float]]) -> None:
        self._watch = watch
        self._before = before
        self._jiffies = process_stats.machine_jiffies()
        self._wall = time.perf_counter()

    @classmethod
    async def start(cls, watch: Watch) -> Meter:
        return cls(watch, await watch.snapshot())

    def elapsed(self) -> float:
        return time.perf_counter() - self._wall

    async def read(self) -> Usage:
        seconds = self.elapsed()
        jiffies = process_stats.machine_jiffies()
        after = await self._watch.snapshot()
        cpu: dict[str, float | None] = {}
        for group in CPU_GROUPS:
            start, end = self._before.get(group, {}), after.get(group, {})
            # A pid born during the phase spent all its CPU in it.
            cpu[group] = process_stats.cpu_spent(start, end) if end else None
        machine_cpu = process_stats.busy_seconds(self._jiffies, jiffies)
        busy = process_stats.busy_share(self._jiffies, jiffies)
        return Usage(seconds, cpu, machine_cpu, busy)


# --- helpers --------------------------------------------------------------------------------


async def poll_until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` every 10 ms (the state is in Postgres: nothing to wait on here)."""
    await until(check, timeout=PHASE_TIMEOUT_S, interval=POLL_S, what=what)


def content_of(size: int) -> str:
    return (CONTENT_TEXT * (size // len(CONTENT_TEXT) + 1))[:size].strip() or "x"


@dataclass(frozen=True, slots=True)
class Bench:
    """What a run works with: the service, its database and broker, and this run's options."""

    options: Options
    chat: service_process.ServiceProcess
    platform: PlatformSettings
    database_url: str
    connection: AbstractRobustConnection
    publisher: ConfirmedPublisher
    probe: asyncpg.Connection[asyncpg.Record]  # polls chat's tables
    watch: Watch

    @property
    def prefetch(self) -> int:
        return self.platform.amqp.prefetch


# --- setup: users and conversations ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setup:
    senders: list[uuid.UUID]
    single: uuid.UUID  # the one-conversation scenario's, then the history's
    spread: list[uuid.UUID]
    token: str  # the first sender's, a member of every conversation


async def register_users(bench: Bench, count: int) -> list[uuid.UUID]:
    """``user.registered`` as auth publishes it; waits until chat's replica holds them all."""
    ids = [uuid.uuid4() for _ in range(count)]
    envelopes = registration_envelopes(ids)
    await bench.publisher.publish_envelopes(envelopes)

    async def replicated() -> bool:
        known = await bench.probe.fetchval("SELECT count(*) FROM users WHERE id = ANY($1)", ids)
        return bool(known == count)

    await poll_until(replicated, "user.registered replication")
    return ids


async def create_group(
    session: aiohttp.ClientSession, base_url: str, token: str, members: list[uuid.UUID], title: str
) -> uuid.UUID:
    body = {"participantIds": [str(m) for m in members], "title": title, "type": "group"}
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{base_url}/api/chat", json=body, headers=headers) as response:
        payload = await response.json(content_type=None)
        if response.status != 201:
            raise RuntimeError(f"POST /api/chat: {response.status} {payload}")
    return uuid.UUID(payload["conversation"]["id"])


async def set_up(bench: Bench, session: aiohttp.ClientSession) -> Setup:
    senders = await register_users(bench, bench.options.senders)
    token = TokenIssuer(bench.platform.jwt).issue(senders[0], uuid.uuid4()).token
    others, base_url = senders[1:], bench.chat.base_url
    single = await create_group(session, base_url, token, others, "bench: one")
    spread = [
        await create_group(session, base_url, token, others, f"bench: {index}")
        for index in range(bench.options.conversations)
    ]
    return Setup(senders, single, spread, token)


# --- throughput: the queue path and its ceilings --------------------------------------------


@dataclass(slots=True)
class Result:
    scenario: str
    messages: int
    usage: Usage
    drained_s: float | None = None  # queue path: until chat's outbox had published every event
    in_transaction: float | None = None  # queue path: chat's connections not idle, on average
    lock_waits: float | None = None  # queue path: of those, waiting for a lock, on average
    ratios: dict[str, float] = field(default_factory=dict)
    round_rates: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.messages / self.usage.seconds if self.usage.seconds > 0 else 0.0


def send_envelopes(
    options: Options, conversations: list[uuid.UUID], senders: list[uuid.UUID]
) -> list[Envelope[object]]:
    """Round-robin over the conversations; each conversation hears from every sender in turn."""
    run = uuid.uuid4().hex[:12]
    content = content_of(options.content_bytes)
    now = datetime.now(UTC)
    return [
        make_envelope(
            MessageSend(
                conversation_id=conversations[index % len(conversations)],
                sender_id=senders[(index // len(conversations)) % len(senders)],
                content=content,
                client_message_id=f"bench-{run}-{index}",
                sent_at=now,
            ),
            producer="bench",
        )
        for index in range(options.count)
    ]


async def raw_publish(bench: Bench, bodies: list[bytes]) -> Result:
    channel = await bench.connection.channel(publisher_confirms=True)
    queue = await channel.declare_queue(
        RAW_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await queue.bind(names.EXCHANGE, routing_key=RAW_QUEUE)
    exchange = await channel.get_exchange(names.EXCHANGE, ensure=False)

    async def publish(body: bytes) -> None:
        trace_id = uuid.uuid4().hex
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(uuid.uuid4()),
            type=names.MESSAGE_SEND,
            app_id="bench",
            timestamp=datetime.now(UTC),
            correlation_id=trace_id,
            headers={"x-trace-id": trace_id},
        )
        await exchange.publish(message, RAW_QUEUE, mandatory=True)

    meter = await Meter.start(bench.watch)
    await run_workers(bench.options.window, bodies, publish)
    usage = await meter.read()
    await queue.purge()
    await channel.close()
    return Result("raw confirmed publish (ceiling)", len(bodies), usage)


async def raw_insert(bench: Bench, setup: Setup) -> Result:
    """Rows like the queue path's into an FK- and trigger-less copy of ``messages``."""
    conversation, now = uuid.uuid4(), datetime.now(UTC)
    content = content_of(bench.options.content_bytes)
    rows: list[tuple[object, ...]] = [
        (
            uuid.uuid4(),
            conversation,
            seq,
            setup.senders[seq % len(setup.senders)],
            f"raw-{conversation.hex[:12]}-{seq}",
            content,
            False,
            [],
            now,
        )
        for seq in range(1, bench.options.count + 1)
    ]
    workers = bench.prefetch
    pool = await asyncpg.create_pool(bench.database_url, min_size=workers, max_size=workers)
    try:

        async def insert(row: tuple[object, ...]) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(RAW_INSERT, *row)

        meter = await Meter.start(bench.watch)
        await run_workers(workers, rows, insert)
        usage = await meter.read()
    finally:
        await pool.close()
    await bench.probe.execute(f"TRUNCATE {RAW_TABLE}")
    return Result("raw asyncpg insert (ceiling)", len(rows), usage)


async def queue_path(
    bench: Bench, label: str, conversations: list[uuid.UUID], setup: Setup
) -> Result:
    """From the first publish until chat's ``messages`` holds every message (then the outbox)."""
    envelopes = send_envelopes(bench.options, conversations, setup.senders)
    target = len(envelopes) + await bench.probe.fetchval(STORED, conversations)
    samples: list[tuple[int, int]] = []

    async def persisted() -> bool:
        row = await bench.probe.fetchrow(PROGRESS, conversations)
        assert row is not None
        samples.append((row["in_transaction"], row["lock_waits"]))
        return bool(row["stored"] >= target)

    async def drained() -> bool:
        return not await bench.probe.fetchval(UNPUBLISHED_LEFT)

    meter = await Meter.start(bench.watch)
    publishing = asyncio.create_task(bench.publisher.publish_envelopes(envelopes))
    try:
        await poll_until(persisted, f"{label}: persisting")
    finally:
        if not publishing.done():
            publishing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publishing
    usage = await meter.read()
    await poll_until(drained, f"{label}: the outbox relay")
    drained_s = meter.elapsed()
    await check_sequences(bench.probe, conversations)
    return Result(
        label,
        len(envelopes),
        usage,
        drained_s=drained_s,
        in_transaction=statistics.fmean(busy for busy, _ in samples),
        lock_waits=statistics.fmean(waits for _, waits in samples),
    )


async def check_sequences(
    probe: asyncpg.Connection[asyncpg.Record], conversations: list[uuid.UUID]
) -> None:
    """Every conversation's seqs are 1..last_seq, gap-free, and match the conversation row."""
    rows = await probe.fetch(
        """
        SELECT c.id, c.last_seq, count(m.id) AS stored, coalesce(max(m.seq), 0) AS top
        FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
        WHERE c.id = ANY($1) GROUP BY c.id
        """,
        conversations,
    )
    broken = [r for r in rows if not r["last_seq"] == r["stored"] == r["top"]]
    if broken:
        raise RuntimeError(f"seq gaps or duplicates in {[dict(r) for r in broken]}")


def median_of(rounds: list[Result]) -> Result:
    """The median round (by msgs/s), carrying every round's rate."""
    ordered = sorted(rounds, key=lambda result: result.rate)
    median = ordered[(len(ordered) - 1) // 2]
    median.round_rates = [result.rate for result in rounds]
    return median


def add_ratios(publish: Result, insert: Result, paths: list[Result]) -> None:
    publish.ratios = {"publish": 1.0}
    insert.ratios = {"insert": 1.0}
    for result in paths:
        result.ratios = {
            "publish": result.rate / publish.rate,
            "insert": result.rate / insert.rate,
            "min": result.rate / min(publish.rate, insert.rate),
        }


async def run_round(bench: Bench, setup: Setup) -> list[Result]:
    bodies = [
        encode_envelope(e) for e in send_envelopes(bench.options, setup.spread, setup.senders)
    ]
    say("raw confirmed publish")
    publish = await raw_publish(bench, bodies)
    say(f"raw asyncpg insert, {bench.prefetch} transactions at once")
    insert = await raw_insert(bench, setup)
    paths = []
    for label, conversations in (
        ("queue path, 1 conversation", [setup.single]),
        (f"queue path, {len(setup.spread)} conversations", setup.spread),
    ):
        say(label)
        paths.append(await queue_path(bench, label, conversations, setup))
    return [publish, insert, *paths]


# --- history: the endpoint against its query ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latencies:
    name: str
    kind: str  # "endpoint" or "query"
    page: str  # "newest" or "after"
    concurrency: int
    values: list[float]
    errors: int
    usage: Usage

    @property
    def rate(self) -> float:
        return len(self.values) / self.usage.seconds if self.usage.seconds > 0 else 0.0

    @property
    def chat_cpu_ms(self) -> float | None:
        """The chat process's CPU milliseconds per request answered."""
        return self.usage.per_item_ms("chat", len(self.values))


async def timed(
    concurrency: int, count: int, call: Callable[[int], Awaitable[bool]]
) -> tuple[list[float], int]:
    """``count`` calls, ``concurrency`` at once; latencies of the good ones, errors counted."""
    latencies: list[float] = []
    errors = 0

    async def one(index: int) -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            ok = await call(index)
        except (aiohttp.ClientError, asyncpg.PostgresError, TimeoutError):
            ok = False
        if ok:
            latencies.append(time.perf_counter() - started)
        else:
            errors += 1

    await run_workers(concurrency, range(count), one)
    return latencies, errors


def history_name(kind: str, page: str) -> str:
    if kind == "endpoint":
        query = "" if page == "newest" else "&after=<random>"
        return f"GET .../messages?limit={PAGE_LIMIT}{query}"
    return "  page_before query (asyncpg)" if page == "newest" else "  page_after query (asyncpg)"


async def check_page(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
    """The endpoint answers a full page: what is timed is real work, not a refusal."""
    async with session.get(url, params={"limit": str(PAGE_LIMIT)}, headers=headers) as response:
        payload = await response.json(content_type=None)
        if response.status != 200 or len(payload["messages"]) != PAGE_LIMIT:
            raise RuntimeError(f"history check: {response.status} {str(payload)[:300]}")


async def measure_history(bench: Bench, setup: Setup) -> list[Latencies]:
    options = bench.options
    last_seq = await bench.probe.fetchval(
        "SELECT last_seq FROM conversations WHERE id = $1", setup.single
    )
    rng = random.Random(options.seed)
    afters = [rng.randint(0, max(0, last_seq - PAGE_LIMIT)) for _ in range(options.requests)]
    url = f"{bench.chat.base_url}/api/chat/{setup.single}/messages"
    headers = {"Authorization": f"Bearer {setup.token}"}
    connector = aiohttp.TCPConnector(limit=options.concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    size = options.concurrency
    pool = await asyncpg.create_pool(bench.database_url, min_size=size, max_size=size)
    repository = ChatRepository()
    results: list[Latencies] = []
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            def endpoint(page: str) -> Callable[[int], Awaitable[bool]]:
                async def call(index: int) -> bool:
                    params = {"limit": str(PAGE_LIMIT)}
                    if page == "after":
                        params["after"] = str(afters[index])
                    async with session.get(url, params=params, headers=headers) as response:
                        body = await response.read()
                    return response.status == 200 and len(body) > 0

                return call

            def query(page: str) -> Callable[[int], Awaitable[bool]]:
                # As ChatService.history calls them: one row more than the page, for hasMore.
                async def call(index: int) -> bool:
                    async with pool.acquire() as conn:
                        if page == "after":
                            rows = await repository.page_after(
                                conn, setup.single, afters[index], PAGE_LIMIT + 1
                            )
                        else:
                            rows = await repository.page_before(
                                conn, setup.single, None, PAGE_LIMIT + 1
                            )
                    return len(rows) > 0

                return call

            await check_page(session, url, headers)
            # One at a time first (each request's own cost), then --concurrency at once.
            for concurrency in dict.fromkeys((1, options.concurrency)):
                for page in ("newest", "after"):
                    for kind, make in (("endpoint", endpoint), ("query", query)):
                        await timed(concurrency, min(WARMUP_REQUESTS, options.requests), make(page))
                        meter = await Meter.start(bench.watch)
                        values, errors = await timed(concurrency, options.requests, make(page))
                        results.append(
                            Latencies(
                                history_name(kind, page),
                                kind,
                                page,
                                concurrency,
                                values,
                                errors,
                                await meter.read(),
                            )
                        )
    finally:
        await pool.close()
    return results


# --- the run --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Results:
    throughput: list[Result]
    history: list[Latencies]
    envelope_bytes: int
    prefetch: int


def service_env(infra: IsolatedInfra, run_dir: Path, database_url: str) -> dict[str, str]:
    """The environment ``devstack`` gives chat in this namespace, plus the bench's settings."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **infra.fleet_plan(run_dir).service_env(SERVICE, free_port()),
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "warning",
        "SHUTDOWN_TIMEOUT": "2",
    }


async def measure(
    chat: service_process.ServiceProcess,
    platform: PlatformSettings,
    database_url: str,
    options: Options,
) -> Results:
    connection = await connect(platform.amqp.url, "bench-chat")
    probe: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(database_url)
    try:
        publisher = await ConfirmedPublisher.open(connection, app_id="bench", window=options.window)
        watch = Watch(chat.process.pid, probe, process_stats.broker_pids())
        bench = Bench(options, chat, platform, database_url, connection, publisher, probe, watch)
        async with aiohttp.ClientSession() as session:
            await service_process.wait_ready(session, chat)
            say(f"chat ready; {options.senders} users by user.registered, conversations by REST")
            setup = await set_up(bench, session)
        await probe.execute(f"CREATE TABLE {RAW_TABLE} (LIKE messages INCLUDING ALL)")
        rounds = []
        for number in range(options.rounds):
            say(f"round {number + 1} of {options.rounds}")
            rounds.append(await run_round(bench, setup))
        publish, insert, *paths = [median_of(list(s)) for s in zip(*rounds, strict=True)]
        add_ratios(publish, insert, paths)
        say(f"history: {options.requests} requests per row, {options.concurrency} at once")
        history = await measure_history(bench, setup)
        sample = send_envelopes(dataclasses.replace(options, count=1), setup.spread, setup.senders)
    finally:
        await probe.close()
        await connection.close()
    envelope_bytes = len(encode_envelope(sample[0]))
    return Results([publish, insert, *paths], history, envelope_bytes, platform.amqp.prefetch)


async def run_isolated(infra: IsolatedInfra, run_dir: Path, options: Options) -> Results:
    isolated_run.cancel_on_sigterm()
    database_url = await infra.create_database(SERVICE)
    env = service_env(infra, run_dir, database_url)
    platform = read_platform(Environment(env), SERVICE, int(env["PORT"]))
    say("migrating the bench database")
    # cwd: the run directory, so ``-m chat`` never finds this script (bench/chat_service.py) first.
    await service_process.migrate(SERVICE, env, run_dir)
    # No auth runs here to write the revocation record chat checks every token against; with no
    # "complete" marker chat would refuse every token (it fails closed), so the bench writes an
    # empty record, as auth does at start.
    redis = create_redis(platform.redis)
    try:
        await RevocationList(redis, KeySpace(platform.redis.key_prefix)).rebuild([], [])
    finally:
        await redis.aclose()
    async with service_process.running_service(SERVICE, env, run_dir, run_dir) as chat:
        return await measure(chat, platform, database_url, options)


# --- output ---------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "" if value is None else f"{value * 1000:.2f}"


def number(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


RATIO_COLUMNS = ("publish", "insert", "min")
SHARE_COLUMNS = ("chat", "postgres", "rabbitmq", "bench")


def throughput_table(results: list[Result]) -> str:
    header = (
        "scenario",
        "messages",
        "seconds",
        "msgs/s",
        "/publish",
        "/insert",
        "/min",
        "relayed s",
        "in tx",
        "lock waits",
        *(f"{group} cpu" for group in SHARE_COLUMNS),
        "machine cpu",
        "msgs/s each round",
    )
    rows = [
        (
            r.scenario,
            str(r.messages),
            f"{r.usage.seconds:.3f}",
            f"{r.rate:,.0f}",
            *(number(r.ratios.get(k)) for k in RATIO_COLUMNS),
            number(r.drained_s, 3),
            number(r.in_transaction, 1),
            number(r.lock_waits, 1),
            *(tables.share(r.usage.share(group)) for group in SHARE_COLUMNS),
            tables.share(r.usage.machine_busy),
            " ".join(f"{rate:,.0f}" for rate in r.round_rates),
        )
        for r in results
    ]
    return tables.render(header, rows)


def cpu_table(results: list[Result]) -> str:
    """CPU milliseconds each message cost each process (the machine: every process's)."""
    groups = (*SHARE_COLUMNS, "machine")
    header = ("CPU ms per message", *groups)
    rows = [
        (r.scenario, *(number(r.usage.per_item_ms(g, r.messages)) for g in groups)) for r in results
    ]
    return tables.render(header, rows)


def query_share(history: list[Latencies], query: Latencies) -> dict[str, float | None]:
    """A query row's p50 and p99 over those of the endpoint row it stands for (same page and
    concurrency); empty for an endpoint row."""
    if query.kind != "query":
        return {}
    endpoint = next(
        h
        for h in history
        if (h.kind, h.page, h.concurrency) == ("endpoint", query.page, query.concurrency)
    )
    shares: dict[str, float | None] = {}
    for q in (50, 99):
        top, bottom = tables.percentile(query.values, q), tables.percentile(endpoint.values, q)
        shares[f"p{q}"] = None if top is None or not bottom else top / bottom
    return shares


def history_table(history: list[Latencies]) -> str:
    header = (
        f"history, limit {PAGE_LIMIT}",
        "at once",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "query/endpoint p50",
        "p99",
        "chat cpu ms/req",
        "chat cpu",
        "postgres cpu",
        "bench cpu",
        "machine cpu",
    )
    rows = []
    for h in history:
        ratio = query_share(history, h)
        rows.append(
            (
                h.name,
                str(h.concurrency),
                str(len(h.values)),
                str(h.errors),
                f"{h.rate:,.0f}",
                ms(tables.percentile(h.values, 50)),
                ms(tables.percentile(h.values, 99)),
                ms(statistics.fmean(h.values) if h.values else None),
                tables.share(ratio.get("p50")),
                tables.share(ratio.get("p99")),
                number(h.chat_cpu_ms if h.kind == "endpoint" else None),
                tables.share(h.usage.share("chat")),
                tables.share(h.usage.share("postgres")),
                tables.share(h.usage.share("bench")),
                tables.share(h.usage.machine_busy),
            )
        )
    return tables.render(header, rows)


def describe(options: Options, results: Results) -> dict[str, object]:
    return {
        "count": options.count,
        "rounds": options.rounds,
        "senders": options.senders,
        "conversations": options.conversations,
        "content_bytes": options.content_bytes,
        "envelope_bytes": results.envelope_bytes,
        "prefetch": results.prefetch,
        "publish_window": options.window,
        "history_requests": options.requests,
        "concurrency": options.concurrency,
        "page_limit": PAGE_LIMIT,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def ms_value(value: float | None) -> float | None:
    return None if value is None else value * 1000


def usage_json(usage: Usage, items: int) -> dict[str, Any]:
    return {
        "seconds": usage.seconds,
        "cpu_share": {group: usage.share(group) for group in SHARE_COLUMNS},
        "cpu_ms_per_item": {
            group: usage.per_item_ms(group, items) for group in (*SHARE_COLUMNS, "machine")
        },
        "machine_busy": usage.machine_busy,
    }


def as_json(options: Options, results: Results) -> dict[str, Any]:
    return {
        **describe(options, results),
        "throughput": [
            {
                "scenario": r.scenario,
                "messages": r.messages,
                "msgs_per_s": r.rate,
                "ratios": r.ratios,
                "outbox_drained_s": r.drained_s,
                "connections_in_transaction": r.in_transaction,
                "connections_waiting_for_a_lock": r.lock_waits,
                "msgs_per_s_each_round": r.round_rates,
                **usage_json(r.usage, r.messages),
            }
            for r in results.throughput
        ],
        "history": [
            {
                "row": h.name.strip(),
                "kind": h.kind,
                "page": h.page,
                "concurrency": h.concurrency,
                "requests": len(h.values),
                "errors": h.errors,
                "per_s": h.rate,
                "p50_ms": ms_value(tables.percentile(h.values, 50)),
                "p99_ms": ms_value(tables.percentile(h.values, 99)),
                "mean_ms": ms_value(statistics.fmean(h.values) if h.values else None),
                "query_over_endpoint": query_share(results.history, h) or None,
                **usage_json(h.usage, len(h.values)),
            }
            for h in results.history
        ],
    }


def report(options: Options, results: Results) -> None:
    if options.json:
        print(json.dumps(as_json(options, results), indent=2))
        return
    print(" ".join(f"{key}={value}" for key, value in describe(options, results).items()))
    print(throughput_table(results.throughput))
    print(cpu_table(results.throughput))
    print(history_table(results.history))
    print(
        "/publish, /insert: msgs/s over that ceiling's (/min: over the lower); relayed s: from "
        "the first publish until chat's outbox relay had published every message.created"
    )
    print(
        "in tx, lock waits: chat's Postgres connections in a transaction, and waiting for a "
        "lock, on average over the queue path (sampled every 10 ms; chat's pool holds 10)"
    )
    print(
        "query/endpoint: the raw query's latency percentile over the endpoint's at the same "
        "concurrency; chat cpu ms/req: the chat process's CPU time per request answered"
    )
    print(
        "cpu: CPU time per wall second (100% = one core) of chat, of the Postgres backends of "
        "chat's database (the bench's polling connection excluded), of the RabbitMQ node "
        f"(shared), of this process; machine cpu: share of all {os.cpu_count()} cores busy"
    )


# --- entry point ----------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=3000, help="messages per scenario")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--senders", type=int, default=10, help="users sending the messages")
    parser.add_argument("--conversations", type=int, default=10, help="for the spread scenario")
    parser.add_argument("--content-bytes", type=int, default=100, help="message text size")
    parser.add_argument("--window", type=int, default=256, help="publishes in flight")
    parser.add_argument("--requests", type=int, default=500, help="history requests per row")
    parser.add_argument("--concurrency", type=int, default=10, help="history requests at once")
    parser.add_argument("--seed", type=int, default=1, help="of the random after= seqs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if min(args.rounds, args.window, args.requests, args.concurrency, args.conversations) < 1:
        parser.error("--rounds, --window, --requests, --concurrency, --conversations: at least 1")
    if args.count < PAGE_LIMIT:
        parser.error(f"--count must be at least {PAGE_LIMIT} (history reads full pages)")
    if args.senders < 2:
        parser.error("--senders must be at least 2 (a group has the owner and others)")
    if not 1 <= args.content_bytes <= 2048:
        parser.error("--content-bytes must be 1 to 2048 (above that chat stores it in MongoDB)")
    return Options(
        count=args.count,
        rounds=args.rounds,
        senders=args.senders,
        conversations=args.conversations,
        content_bytes=args.content_bytes,
        window=args.window,
        requests=args.requests,
        concurrency=args.concurrency,
        seed=args.seed,
        json=args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    return isolated_run.exit_code_of(
        SERVICE,
        "database, vhost, Redis prefix, MongoDB stand-in",
        lambda infra, run_dir: run_isolated(infra, run_dir, options),
        lambda results: report(options, results),
    )


if __name__ == "__main__":
    sys.exit(main())
