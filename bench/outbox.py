"""The transactional outbox measured against its two ceilings, in one run.

Scenarios, each over ``--count`` messages of the same bytes (an encoded
``notification.requested`` envelope from ``contracts.examples``):

1. raw confirmed publish: aio-pika, one confirm-mode channel, persistent messages pipelined with
   ``--window`` in flight, to the ``chat`` topic exchange (the broker's ceiling); ``chat`` routes
   ``notification.requested`` to the quorum queue ``notifications.queue`` and to a durable
   classic queue this bench counts deliveries on (in every scenario, so all see the same
   routing);
2. raw asyncpg insert: rows shaped like ``outbox`` (a copy of the table without its NOTIFY
   trigger), ``--batch`` rows per transaction, ``--writers`` concurrent transactions (the
   database's ceiling);
3. outbox end to end: writers call ``servicekit.outbox.add_to_outbox`` in transactions (as in 2)
   while ``OutboxRelay`` publishes with ``ConfirmedPublisher``; timed from the first insert until
   a consumer has received every event id;
4. relay only: the same rows inserted with no relay running (that insert is reported too), then
   the relay started and timed until every row has ``published_at`` set.

Everything runs in a Postgres database and a RabbitMQ vhost of its own, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aio_pika
import asyncpg
import uvloop
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from contracts import Envelope, encode_envelope, make_envelope, names
from contracts.examples import EVENT_EXAMPLES
from devstack.background import in_background
from devstack.infra import (
    DEFAULT_POSTGRES_URL,
    DEFAULT_RABBITMQ_URL,
    DEFAULT_REDIS_URL,
    amqp_url_for_vhost,
    create_database,
    create_vhost,
    delete_vhost,
    drop_database,
    ensure_running,
)
from devstack.waiting import until_equal
from servicekit.amqp.connection import connect
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.amqp.topology import declare_topology
from servicekit.migrations import apply_migrations, service_kit_migrations
from servicekit.outbox import OutboxRelay, add_to_outbox
from servicekit.postgres import Pool, create_pool

if TYPE_CHECKING:  # mypy knows bench/ as the package ``bench``; the script runs from bench/
    from bench import isolated_run, process_stats, tables
    from bench.worker_tasks import run_workers
else:
    import isolated_run
    import process_stats
    import tables
    from worker_tasks import run_workers

ROUTING_KEY = names.NOTIFICATION_REQUESTED
COUNT_QUEUE = "bench.outbox.count"
RELAY_BATCH_SIZE = 500  # OutboxRelay's default
PHASE_TIMEOUT_S = 120.0
UNPUBLISHED_LEFT = "SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)"
SETTLE_S = 0.3  # after the last expected delivery, how long late duplicates may still arrive

type Envelopes = list[Envelope[object]]


@dataclass(frozen=True, slots=True)
class Options:
    count: int
    rounds: int
    writers: int
    batch: int
    window: int
    loop: str
    json: bool
    admin_url: str
    broker_url: str


@dataclass(frozen=True, slots=True)
class Elapsed:
    seconds: float
    cpu_seconds: float  # this process only (writers, relay, publisher, consumer), not the servers
    machine_busy: float | None  # share of all cores busy (every process), None off Linux


class Stopwatch:
    """Wall-clock time, this process's CPU time and the machine's busy share since creation."""

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._jiffies = process_stats.machine_jiffies()

    def read(self) -> Elapsed:
        busy = process_stats.busy_share(self._jiffies, process_stats.machine_jiffies())
        return Elapsed(time.perf_counter() - self._wall, time.process_time() - self._cpu, busy)


@dataclass(slots=True)
class Result:
    scenario: str
    messages: int
    seconds: float
    cpu_seconds: float
    machine_busy: float | None
    duplicates: int | None = None
    ratios: dict[str, float] = field(default_factory=dict)
    round_rates: list[float] = field(default_factory=list)

    @classmethod
    def of(
        cls, scenario: str, messages: int, elapsed: Elapsed, duplicates: int | None = None
    ) -> Result:
        return cls(
            scenario,
            messages,
            elapsed.seconds,
            elapsed.cpu_seconds,
            elapsed.machine_busy,
            duplicates,
        )

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_share(self) -> float:
        """CPU time of this process per wall second: near 1.0 means the bench process is bound."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Bench:
    """The isolated resources one run works in."""

    options: Options
    database_url: str
    amqp_url: str
    envelopes: Envelopes = field(default_factory=list)  # this round's events: fresh ids each round


class Counter:
    """Counts deliveries on the bench queue: distinct message ids and repeats."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.total = 0
        self.expected = 0
        self.complete = asyncio.Event()

    def expect(self, count: int) -> None:
        self.seen.clear()
        self.total = 0
        self.expected = count
        self.complete.clear()

    @property
    def duplicates(self) -> int:
        return self.total - len(self.seen)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.total += 1
        self.seen.add(message.message_id or "")
        if len(self.seen) >= self.expected:
            self.complete.set()


# --- setup ----------------------------------------------------------------------------------


def build_envelopes(count: int) -> Envelopes:
    example = EVENT_EXAMPLES[ROUTING_KEY]
    return [make_envelope(example, producer="bench") for _ in range(count)]


async def prepare_database(database_url: str) -> None:
    conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn, [service_kit_migrations()])
        # The raw ceiling's table: the outbox's columns, defaults and indexes, not its trigger.
        await conn.execute("CREATE TABLE raw_outbox (LIKE outbox INCLUDING ALL)")
    finally:
        await conn.close()


async def prepare_broker(connection: AbstractRobustConnection) -> AbstractChannel:
    channel = await connection.channel()
    await declare_topology(channel)
    queue = await channel.declare_queue(COUNT_QUEUE, durable=True)
    await queue.bind(names.EXCHANGE, routing_key=ROUTING_KEY)
    return channel


async def start_counter(connection: AbstractRobustConnection) -> Counter:
    counter = Counter()
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=1000)
    queue = await channel.get_queue(COUNT_QUEUE)
    await queue.consume(counter.on_message, no_ack=True)
    return counter


async def reset_broker(channel: AbstractChannel) -> None:
    """Empty the queues that ``notification.requested`` reaches, so each phase starts alike."""
    for name in (COUNT_QUEUE, names.NOTIFICATIONS_QUEUE):
        queue = await channel.get_queue(name)
        await queue.purge()


async def reset_database(database_url: str) -> None:
    conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(database_url)
    try:
        await conn.execute("TRUNCATE outbox, raw_outbox")
        await conn.execute("VACUUM ANALYZE outbox")
        await conn.execute("VACUUM ANALYZE raw_outbox")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def writer_pool(bench: Bench) -> AsyncIterator[Pool]:
    size = bench.options.writers
    pool = await create_pool(bench.database_url, min_size=size, max_size=size)
    try:
        yield pool
    finally:
        await pool.close()


# --- helpers --------------------------------------------------------------------------------


def batches[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def wait_for_deliveries(counter: Counter) -> None:
    async with asyncio.timeout(PHASE_TIMEOUT_S):
        await counter.complete.wait()


async def wait_until_published(database_url: str) -> None:
    """Poll (every 10 ms, on the partial index) until no outbox row is unpublished."""
    conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(database_url)
    try:
        await until_equal(
            lambda: conn.fetchval(UNPUBLISHED_LEFT), False, timeout=PHASE_TIMEOUT_S, interval=0.01
        )
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def running_relay(bench: Bench, connection: AbstractRobustConnection) -> AsyncIterator[None]:
    """``OutboxRelay.run`` as a service runs it: its own pool, publisher and listener."""
    pool = await create_pool(bench.database_url, min_size=1, max_size=2)
    publisher = await ConfirmedPublisher.open(
        connection, app_id="bench", window=bench.options.window
    )
    relay = OutboxRelay(
        pool, publisher, database_url=bench.database_url, batch_size=RELAY_BATCH_SIZE
    )
    try:
        async with in_background(relay.run()):
            yield
    finally:
        await publisher.close()
        await pool.close()


async def outbox_inserts(bench: Bench, pool: Pool) -> None:
    async def write(chunk: Sequence[Envelope[object]]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await add_to_outbox(conn, chunk)

    await run_workers(bench.options.writers, batches(bench.envelopes, bench.options.batch), write)


# --- scenarios ------------------------------------------------------------------------------


async def raw_publish(bench: Bench, connection: AbstractRobustConnection) -> Result:
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(names.EXCHANGE, ensure=False)

    async def publish(envelope: Envelope[object]) -> None:
        message = aio_pika.Message(
            encode_envelope(envelope),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(envelope.id),
            type=envelope.type,
            app_id="bench",
            timestamp=datetime.now(UTC),
            correlation_id=envelope.trace_id,
            headers={"x-trace-id": envelope.trace_id},
        )
        await exchange.publish(message, ROUTING_KEY)

    stopwatch = Stopwatch()
    await run_workers(bench.options.window, iter(bench.envelopes), publish)
    elapsed = stopwatch.read()
    await channel.close()
    return Result.of("raw confirmed publish (ceiling)", len(bench.envelopes), elapsed)


def insert_statement(rows: int) -> str:
    """A plain multi-row INSERT of ``rows`` rows into the trigger-less copy of ``outbox``."""
    values = ", ".join(
        f"(${i * 4 + 1}, ${i * 4 + 2}, ${i * 4 + 3}, ${i * 4 + 4})" for i in range(rows)
    )
    return f"INSERT INTO raw_outbox (event_id, routing_key, payload, trace_id) VALUES {values}"  # noqa: S608


async def raw_insert(bench: Bench) -> Result:
    records = [(e.id, e.type, encode_envelope(e), e.trace_id) for e in bench.envelopes]

    async with writer_pool(bench) as pool:

        async def insert(chunk: Sequence[tuple[uuid.UUID, str, bytes, str]]) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(insert_statement(len(chunk)), *[v for row in chunk for v in row])

        stopwatch = Stopwatch()
        await run_workers(bench.options.writers, batches(records, bench.options.batch), insert)
        elapsed = stopwatch.read()
    return Result.of("raw asyncpg insert (ceiling)", len(records), elapsed)


async def outbox_end_to_end(
    bench: Bench, connection: AbstractRobustConnection, counter: Counter
) -> Result:
    counter.expect(len(bench.envelopes))
    async with running_relay(bench, connection), writer_pool(bench) as pool:
        await asyncio.sleep(0.3)  # the relay connects, listens and finds nothing to do
        stopwatch = Stopwatch()
        await outbox_inserts(bench, pool)
        await wait_for_deliveries(counter)
        elapsed = stopwatch.read()
        await asyncio.sleep(SETTLE_S)
    return Result.of("outbox end to end", len(bench.envelopes), elapsed, counter.duplicates)


async def outbox_insert_then_relay(
    bench: Bench, connection: AbstractRobustConnection, counter: Counter
) -> tuple[Result, Result]:
    """Pre-insert with no relay (timed: the writers' cost alone), then time the relay alone."""
    counter.expect(len(bench.envelopes))
    async with writer_pool(bench) as pool:
        stopwatch = Stopwatch()
        await outbox_inserts(bench, pool)
        inserted = stopwatch.read()
    stopwatch = Stopwatch()
    async with running_relay(bench, connection):
        await wait_until_published(bench.database_url)
        published = stopwatch.read()
        await wait_for_deliveries(counter)
        await asyncio.sleep(SETTLE_S)
    count = len(bench.envelopes)
    return (
        Result.of("outbox insert, no relay", count, inserted),
        Result.of("relay only (backlog)", count, published, counter.duplicates),
    )


# --- the run --------------------------------------------------------------------------------


async def run_round(
    bench: Bench, connection: AbstractRobustConnection, admin: AbstractChannel, counter: Counter
) -> list[Result]:
    """Every scenario once, each starting from empty tables and queues."""
    await reset_broker(admin)
    await reset_database(bench.database_url)
    counter.expect(len(bench.envelopes))
    publish = await raw_publish(bench, connection)
    await wait_for_deliveries(counter)
    await reset_broker(admin)

    insert = await raw_insert(bench)
    await reset_database(bench.database_url)

    end_to_end = await outbox_end_to_end(bench, connection, counter)
    await reset_broker(admin)
    await reset_database(bench.database_url)

    outbox_insert, relay_only = await outbox_insert_then_relay(bench, connection, counter)
    return [publish, insert, outbox_insert, end_to_end, relay_only]


async def run_scenarios(bench: Bench) -> list[Result]:
    """``--rounds`` rounds with fresh event ids; per scenario, the median round by msgs/s."""
    publisher_connection = await connect(bench.amqp_url, "bench-publisher")
    consumer_connection = await connect(bench.amqp_url, "bench-consumer")
    try:
        admin = await prepare_broker(publisher_connection)
        counter = await start_counter(consumer_connection)
        rounds = []
        for _ in range(bench.options.rounds):
            fresh = dataclasses.replace(bench, envelopes=build_envelopes(bench.options.count))
            rounds.append(await run_round(fresh, publisher_connection, admin, counter))
    finally:
        await consumer_connection.close()
        await publisher_connection.close()
    publish, insert, outbox_insert, end_to_end, relay_only = [
        median_of(list(scenario)) for scenario in zip(*rounds, strict=True)
    ]
    add_ratios(publish, insert, outbox_insert, [end_to_end, relay_only])
    return [publish, insert, outbox_insert, end_to_end, relay_only]


def median_of(rounds: list[Result]) -> Result:
    """The median round (by msgs/s), carrying every round's rate and all duplicates seen."""
    ordered = sorted(rounds, key=lambda result: result.rate)
    median = ordered[(len(ordered) - 1) // 2]
    median.round_rates = [result.rate for result in rounds]
    if median.duplicates is not None:
        median.duplicates = sum(result.duplicates or 0 for result in rounds)
    return median


def add_ratios(
    publish: Result, insert: Result, outbox_insert: Result, relayed: list[Result]
) -> None:
    publish.ratios = {"publish": 1.0}
    insert.ratios = {"insert": 1.0}
    outbox_insert.ratios = {"insert": outbox_insert.rate / insert.rate}
    for result in relayed:
        result.ratios = {
            "publish": result.rate / publish.rate,
            "insert": result.rate / insert.rate,
            "min": result.rate / min(publish.rate, insert.rate),
        }


async def run_isolated(options: Options, vhost: str, database: str) -> list[Result]:
    """Create the bench database, run, and drop it whatever happened."""
    isolated_run.cancel_on_sigterm()  # so the ``finally`` below still drops the database
    database_url = options.admin_url.rsplit("/", 1)[0] + "/" + database
    bench = Bench(
        options=options,
        database_url=database_url,
        amqp_url=amqp_url_for_vhost(options.broker_url, vhost),
    )
    await create_database(options.admin_url, database)
    try:
        await prepare_database(database_url)
        results = await run_scenarios(bench)
    finally:
        await drop_database(options.admin_url, database)
    return results


# --- output ---------------------------------------------------------------------------------


RATIO_COLUMNS = ("publish", "insert", "min")
HEADER = (
    "scenario",
    "messages",
    "seconds",
    "msgs/s",
    "/publish",
    "/insert",
    "/min",
    "bench cpu",
    "machine cpu",
    "msgs/s each round",
)


def table_row(result: Result) -> tuple[str, ...]:
    ratios = (f"{result.ratios[k]:.2f}" if k in result.ratios else "" for k in RATIO_COLUMNS)
    return (
        result.scenario,
        str(result.messages),
        f"{result.seconds:.3f}",
        f"{result.rate:,.0f}",
        *ratios,
        tables.share(result.cpu_share),
        tables.share(result.machine_busy),
        " ".join(f"{rate:,.0f}" for rate in result.round_rates),
    )


def describe(options: Options, payload_bytes: int) -> dict[str, object]:
    return {
        "loop": options.loop,
        "count": options.count,
        "rounds": options.rounds,
        "payload_bytes": payload_bytes,
        "writers": options.writers,
        "events_per_transaction": options.batch,
        "publish_window": options.window,
        "relay_batch_size": RELAY_BATCH_SIZE,
        "python": sys.version.split()[0],
    }


def report(options: Options, results: list[Result]) -> None:
    context = describe(options, len(encode_envelope(build_envelopes(1)[0])))
    if options.json:
        scenarios = [
            {**asdict(r), "msgs_per_s": r.rate, "bench_cpu_share": r.cpu_share} for r in results
        ]
        print(json.dumps({**context, "scenarios": scenarios}, indent=2))
        return
    print(" ".join(f"{key}={value}" for key, value in context.items()))
    # ratios are msgs/s over a ceiling's msgs/s (``min`` = the lower one)
    print(tables.render(HEADER, [table_row(result) for result in results]))
    for result in results:
        if result.duplicates is not None:
            print(f"{result.scenario}: {result.duplicates} duplicate deliveries")
    print(
        "bench cpu: this process's CPU time (writers, relay, consumer) per wall second; "
        f"machine cpu: share of all {os.cpu_count()} cores busy (every process)"
    )


# --- entry point ----------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=3000, help="messages per scenario")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--writers", type=int, default=10, help="concurrent writer transactions")
    parser.add_argument("--batch", type=int, default=1, help="events per writer transaction")
    parser.add_argument(
        "--window", type=int, default=256, help="publishes in flight (raw and relay)"
    )
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--admin-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--broker-url", default=DEFAULT_RABBITMQ_URL)
    args = parser.parse_args(argv)
    if min(args.count, args.rounds, args.writers, args.batch, args.window) < 1:
        parser.error("--count, --rounds, --writers, --batch and --window must be at least 1")
    return Options(
        count=args.count,
        rounds=args.rounds,
        writers=args.writers,
        batch=args.batch,
        window=args.window,
        loop=args.loop,
        json=args.json,
        admin_url=args.admin_url,
        broker_url=args.broker_url,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    isolated_run.set_up_process()  # Ctrl-C, SIGTERM: the database and vhost are still removed
    with contextlib.redirect_stdout(sys.stderr):
        ensure_running(options.admin_url, DEFAULT_REDIS_URL, options.broker_url)
    suffix = secrets.token_hex(5)
    vhost, database = f"bench-outbox-{suffix}", f"bench_outbox_{suffix}"
    loop_factory = uvloop.new_event_loop if options.loop == "uvloop" else asyncio.new_event_loop
    try:
        create_vhost(vhost)
        results = asyncio.run(run_isolated(options, vhost, database), loop_factory=loop_factory)
    except asyncio.CancelledError:
        print("bench: terminated; removing its database and vhost", file=sys.stderr)
        return 143
    finally:
        delete_vhost(vhost)
    report(options, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
