"""The fault scenarios of ``make chaos``: each injects its faults while the load runs, then the
load stops and the audit runs (docs/reliability.md).

A fault's blocking work (stopping a server, waiting for a process to answer) runs in a worker
thread, so the clients keep sending and receiving on the event loop meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import socketio

from chaos.audit import Audit, audit
from chaos.load import ACK_WAIT_SECONDS, Device, Load, LoadShape, User
from chaos.raw_socket import RawSocket
from chaos.stack import ChaosStack
from contracts.names import dead_letter_queue
from contracts.topology import QUEUES
from e2e.accounts import register
from servicekit.amqp.consumer import REASON_HEADER


@dataclass
class Faults:
    """What a scenario did, in words, and how long the fleet took to answer again."""

    done: list[str] = field(default_factory=list)
    recovery: float = 0.0
    problems: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.done.append(text)

    def recovered_in(self, seconds: float) -> None:
        self.recovery = max(self.recovery, seconds)


@dataclass(frozen=True)
class Timing:
    warmup: float
    settle: float
    outage: float
    flood: float  # scenario 7: the longest the slow socket's room is flooded
    storm: int  # scenario 9: handshakes with bad tokens


FULL = Timing(warmup=5.0, settle=10.0, outage=10.0, flood=90.0, storm=400)
FAST = Timing(warmup=2.0, settle=4.0, outage=4.0, flood=60.0, storm=100)

Inject = Callable[[ChaosStack, Load, Timing, Faults], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    number: int
    name: str
    inject: Inject
    load_shape: Callable[[LoadShape], LoadShape] = lambda shape: shape


@dataclass
class Outcome:
    scenario: Scenario
    load: str
    faults: Faults
    audit: Audit

    @property
    def passed(self) -> bool:
        return self.audit.passed and not self.faults.problems


async def _thread[T](work: Callable[[], T]) -> T:
    return await asyncio.to_thread(work)


async def _restart_process(stack: ChaosStack, name: str, faults: Faults) -> None:
    await _thread(lambda: stack.kill_process(name))
    started = time.monotonic()
    stack.start_process(name)
    await _thread(lambda: stack.wait_ready([name]))
    faults.recovered_in(time.monotonic() - started)


# 1. The broker


async def broker_stopped_then_killed(
    stack: ChaosStack, _: Load, timing: Timing, faults: Faults
) -> None:
    await _thread(stack.rabbit.stop)
    faults.note(f"RabbitMQ stopped {timing.outage:.0f} s")
    await asyncio.sleep(timing.outage)
    started = time.monotonic()
    await _thread(stack.rabbit.start)
    await _thread(stack.wait_ready)
    faults.recovered_in(time.monotonic() - started)
    await asyncio.sleep(timing.settle)
    await _thread(stack.rabbit.kill)
    faults.note("RabbitMQ SIGKILLed")
    started = time.monotonic()
    await _thread(stack.rabbit.start)
    await _thread(stack.wait_ready)
    faults.recovered_in(time.monotonic() - started)


# 2. PostgreSQL crashes


async def postgres_crashed(stack: ChaosStack, _: Load, timing: Timing, faults: Faults) -> None:
    await _thread(lambda: stack.postgres.stop("immediate"))
    faults.note(f"PostgreSQL stopped -m immediate for {timing.outage:.0f} s")
    await asyncio.sleep(timing.outage)
    started = time.monotonic()
    await _thread(stack.postgres.start)  # crash recovery from the WAL
    await _thread(stack.wait_ready)
    faults.recovered_in(time.monotonic() - started)


# 3. Redis restarted, empty


async def redis_restarted_empty(
    stack: ChaosStack, load: Load, timing: Timing, faults: Faults
) -> None:
    watcher, watched = _engaged_pair(load)
    revoked = await _revoked_token(load)
    await _thread(stack.redis.kill)
    faults.note("Redis SIGKILLed and started empty")
    started = time.monotonic()
    await _thread(stack.redis.start)
    await _thread(stack.wait_ready)
    faults.recovered_in(time.monotonic() - started)
    await asyncio.sleep(timing.settle)
    # Revocations come back from Postgres: the signed-out token stays refused.
    for where, status in (await _token_answers(load, revoked)).items():
        if status != 401:
            faults.problems.append(f"a revoked token got {status} from {where} after the restart")
    if await _socket_accepts(load, revoked):
        faults.problems.append("a revoked token opened a socket after the restart")
    # Presence comes back: a connected user is shown online to who shares a conversation.
    if not await _shown_online(watcher, watched):
        faults.problems.append("presence of a connected user was not shown after the restart")
    # Rate limits come back: a flood from one socket is still cut short.
    if not await _flood_is_limited(watcher):
        faults.problems.append("a flood of events was not rate limited after the restart")


def _engaged_pair(load: Load) -> tuple[Device, User]:
    first = load.users[0]
    other = next(u for u in load.users[1:] if set(u.conversations) & set(first.conversations))
    return first.devices[0], other


async def _revoked_token(load: Load) -> str:
    registered = await register(load.http, tag="chaosrevoked")
    token = str(registered["token"])
    headers = {"Authorization": f"Bearer {token}"}
    async with load.http.post("/api/auth/logout", headers=headers) as response:
        if response.status != 204:
            raise RuntimeError(f"logout answered {response.status}")
    return token


async def _token_answers(load: Load, token: str) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {token}"}
    answers = {}
    for path in ("/api/auth/me", "/api/chat", "/api/notifications"):
        async with load.http.get(path, headers=headers) as response:
            answers[path] = response.status
    return answers


async def _socket_accepts(load: Load, token: str) -> bool:
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(
            load.url, auth={"token": token}, transports=["websocket"], wait_timeout=10
        )
    except socketio.exceptions.ConnectionError:
        return False
    await client.disconnect()
    return True


async def _shown_online(watcher: Device, watched: User, wait: float = 45.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError, socketio.exceptions.SocketIOError):
            ack = await watcher.client.call(
                "presence:get", {"userIds": [watched.id]}, timeout=ACK_WAIT_SECONDS
            )
            if ack.get("ok") and ack["presence"].get(watched.id, {}).get("online"):
                return True
        await asyncio.sleep(0.5)
    return False


async def _flood_is_limited(device: Device, events: int = 80) -> bool:
    acks = await asyncio.gather(
        *(
            device.client.call("presence:get", {"userIds": []}, timeout=ACK_WAIT_SECONDS)
            for _ in range(events)
        ),
        return_exceptions=True,
    )
    return any(
        isinstance(ack, dict) and not ack.get("ok") and ack["error"]["code"] == "rate_limited"
        for ack in acks
    )


# 4. Chat and a worker, mid-work


async def chat_and_worker_killed(
    stack: ChaosStack, _: Load, timing: Timing, faults: Faults
) -> None:
    await _restart_process(stack, "chat", faults)
    faults.note("chat SIGKILLed mid-batch")
    await asyncio.sleep(timing.settle)
    await _restart_process(stack, "workers", faults)
    faults.note("workers SIGKILLed mid-message")


# 5. A gateway instance with clients on it


async def gateway_killed(stack: ChaosStack, load: Load, timing: Timing, faults: Faults) -> None:
    victim = stack.instance_names("gateway")[-1]
    port = stack.instance_port(victim)
    await _thread(lambda: stack.kill_process(victim))
    faults.note(f"{victim} SIGKILLed with its clients")
    started = time.monotonic()
    # Its clients reconnect through nginx to the other instance and sync.
    while any(not d.client.connected for d in load.devices):
        if time.monotonic() - started > 60:
            faults.problems.append("clients of the killed gateway did not reconnect in 60 s")
            break
        await asyncio.sleep(0.1)
    faults.recovered_in(time.monotonic() - started)
    await asyncio.sleep(timing.settle)
    stack.start_process(victim)
    await _thread(lambda: stack.wait_ready([victim]))
    faults.note(f"{victim} started again (port {port})")


# 6. The MongoDB stand-in


async def mongo_killed(stack: ChaosStack, load: Load, timing: Timing, faults: Faults) -> None:
    await _thread(stack.mongo.kill)
    killed_at = time.monotonic()
    faults.note(f"MongoDB stand-in SIGKILLed for {timing.outage:.0f} s")
    async with load.http.get("/api/chat/readyz") as response:
        named = response.status == 503 and "mongo" in (await response.text()).lower()
    if not named:
        faults.problems.append("chat's /readyz did not name MongoDB while it was down")
    await asyncio.sleep(timing.outage)
    back_at = time.monotonic()
    small = [
        s for s in load.sends if not s.large and s.acked_at and killed_at < s.acked_at < back_at
    ]
    if not small:
        faults.problems.append("no small message was acked while MongoDB was down")
    faults.note(f"{len(small)} small messages acked meanwhile")
    await _thread(stack.mongo.start)
    await _thread(stack.wait_ready)
    faults.recovered_in(time.monotonic() - back_at)


# 7. A socket that never reads, in a busy room

FLOOD_PADDING = 15000  # near the longest text a message may have (16,000)
FLOOD_PER_MEMBER = 8.0  # sends/s: under RATE_LIMIT_REST_SEND_PER_USER's 10/s, so none waits
BASELINE_FLOOD_SECONDS = 15.0
AFTER_CUT_SECONDS = 5.0  # the flood goes on this long after the cut, to see the others
SLOW_MEMORY_BOUND_MB = 64.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else 0.0


async def slow_reader_in_a_busy_room(
    stack: ChaosStack, load: Load, timing: Timing, faults: Faults
) -> None:
    """The same flood three times: with every socket reading (before), then with one socket
    of the room that never reads, until the gateway cuts it (past its 4 MiB of unsent bytes,
    once the kernel's send buffer, up to ``tcp_wmem``'s 4 MiB, is full too) or
    ``timing.flood`` runs out, then with every socket reading again (after: the room's
    history has grown meanwhile, which costs chat and MongoDB a little). The second must cut
    that socket and cost the instance no more than its bounded backlog, and the others no
    delivery time beyond what the floods before and after it cost."""
    victim = load.users[0]
    room = victim.conversations[0]
    members = [u for u in load.users if room in u.conversations]
    instance = stack.instance_names("gateway")[0]
    pid = stack.running[instance].pid
    log = stack.log_path(instance)
    before = await _flood(load, members, room, BASELINE_FLOOD_SECONDS, pid)
    cuts_before = log.read_text().count("slow_socket_cut")
    slow = await RawSocket.connect("127.0.0.1", stack.instance_port(instance), victim.token)
    flood_from = time.monotonic()
    cut_at: list[float] = []

    def done() -> bool:
        if not cut_at and log.read_text().count("slow_socket_cut") > cuts_before:
            cut_at.append(time.monotonic())
        return bool(cut_at) and time.monotonic() > cut_at[0] + AFTER_CUT_SECONDS

    slowed = await _flood(load, members, room, timing.flood, pid, done)
    if not await slow.closed_by_server(within=10):
        faults.problems.append("the slow socket's connection stayed open")
    slow.close()
    after = await _flood(load, members, room, BASELINE_FLOOD_SECONDS, pid)
    faults.note(
        f"{room[:8]} ({len(members)} members) flooded with 15 KB messages for "
        f"{BASELINE_FLOOD_SECONDS:.0f} s, then with a socket on {instance} that never reads "
        f"for {slowed.seconds:.0f} s ({slowed.sent} messages), then {BASELINE_FLOOD_SECONDS:.0f}"
        " s again"
    )
    faults.note(
        f"{instance} memory peak {before.peak_mb:.0f}, {slowed.peak_mb:.0f}, "
        f"{after.peak_mb:.0f} MB; other sockets' p95 delivery {before.p95 * 1000:.0f}, "
        f"{slowed.p95 * 1000:.0f}, {after.p95 * 1000:.0f} ms"
    )
    if not cut_at:
        faults.problems.append("the socket that never reads was not cut")
    else:
        faults.note(f"cut after {cut_at[0] - flood_from:.1f} s")
        faults.recovered_in(cut_at[0] - flood_from)
    if slowed.peak_mb - before.peak_mb > SLOW_MEMORY_BOUND_MB:
        faults.problems.append(f"{instance} grew {slowed.peak_mb - before.peak_mb:.0f} MB")
    if slowed.p95 > 1.5 * max(before.p95, after.p95) + 0.1:
        faults.problems.append("the other sockets' delivery slowed down")


@dataclass(frozen=True)
class Flooded:
    peak_mb: float
    p95: float
    seconds: float
    sent: int


async def _flood(
    load: Load,
    members: list[User],
    room: str,
    seconds: float,
    pid: int,
    done: Callable[[], bool] = lambda: False,
) -> Flooded:
    """Flood ``room`` from every member until ``seconds`` pass or ``done()``."""
    started = time.monotonic()
    sends_before = len(load.sends)
    stop = asyncio.Event()
    floods = [
        asyncio.create_task(load.flood(u, room, stop, FLOOD_PADDING, FLOOD_PER_MEMBER))
        for u in members
    ]
    peak = _rss_mb(pid)
    while time.monotonic() < started + seconds and not done():
        peak = max(peak, _rss_mb(pid))
        await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*floods)
    flooded_for = time.monotonic() - started
    await asyncio.sleep(2)  # the last deliveries arrive
    p95 = _p95(load.latencies(started, time.monotonic()))
    return Flooded(peak, p95, flooded_for, len(load.sends) - sends_before)


# 9. A handshake storm and oversize frames


async def handshake_storm(stack: ChaosStack, load: Load, timing: Timing, faults: Faults) -> None:
    storm_from = time.monotonic()
    before = load.latencies(load.started_at + 1, storm_from)
    connected_before = sum(d.connections for d in load.devices)
    good = load.users[: max(len(load.users) // 4, 1)]
    bad_tokens = ["", "not-a-jwt", good[0].token[:-4] + "AAAA", f"{good[0].token}x"]
    attempts = [(t, False) for t in bad_tokens * (timing.storm // len(bad_tokens))]
    attempts += [(u.token, True) for u in good]
    random.Random(9).shuffle(attempts)
    outcomes = await _bounded([_handshake(load.url, token) for token, _ in attempts], limit=32)
    wrong = sum(1 for (_, ok), got in zip(attempts, outcomes, strict=True) if ok != got)
    spent = time.monotonic() - storm_from
    faults.note(
        f"{len(attempts)} handshakes in {spent:.1f} s ({len(attempts) / spent:.0f}/s), "
        f"{len(attempts) - len(good)} with bad tokens"
    )
    if wrong:
        faults.problems.append(f"{wrong} handshakes got the wrong answer")
    oversize_cut = await _oversize_frame_is_refused(stack, load.users[0])
    faults.note("a frame over SOCKET_IO_MAX_PAYLOAD")
    if not oversize_cut:
        faults.problems.append("an oversize frame did not close its connection")
    await asyncio.sleep(timing.settle)
    during = load.latencies(storm_from, time.monotonic())
    faults.note(
        f"other sockets' p95 delivery {_p95(before) * 1000:.0f} ms before, "
        f"{_p95(during) * 1000:.0f} ms during"
    )
    if sum(d.connections for d in load.devices) != connected_before:
        faults.problems.append("sockets of the load were disconnected by the storm")
    if _p95(during) > 3 * _p95(before) + 0.25:
        faults.problems.append("the other sockets' delivery slowed down")


async def _bounded(work: list[Awaitable[bool]], limit: int) -> list[bool]:
    gate = asyncio.Semaphore(limit)

    async def one(item: Awaitable[bool]) -> bool:
        async with gate:
            return await item

    return await asyncio.gather(*(one(item) for item in work))


async def _handshake(url: str, token: str) -> bool:
    """Whether a Socket.IO connect with ``token`` is accepted (then closed again)."""
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    except socketio.exceptions.ConnectionError:
        return False
    await client.disconnect()
    return True


async def _oversize_frame_is_refused(stack: ChaosStack, user: User) -> bool:
    instance = stack.instance_names("gateway")[0]
    raw = await RawSocket.connect("127.0.0.1", stack.instance_port(instance), user.token)
    try:
        limit = int(stack.processes[instance].env.get("SOCKET_IO_MAX_PAYLOAD", 64 * 1024))
        raw.send_text(b'42["presence:get",{"userIds":["' + b"x" * limit + b'"]}]')
        return await raw.closed_by_server(within=10)
    finally:
        raw.close()


# 8. Poison messages


def _poison_bodies() -> list[tuple[str, bytes]]:
    foreign = uuid.uuid4()
    return [
        ("not JSON", b"\xff\xfe not json"),
        ("JSON, not an envelope", b"[1, 2, 3]"),
        (
            "an envelope of an unknown type",
            (
                b'{"id":"%s","type":"no.such.event","occurredAt":"2026-12-07T00:00:00Z",'
                b'"data":{}}' % str(foreign).encode()
            ),
        ),
    ]


async def poison_in_every_queue(stack: ChaosStack, _: Load, timing: Timing, faults: Faults) -> None:
    connection = await aio_pika.connect(stack.rabbit.url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        sent: dict[str, set[str]] = {}
        for spec in QUEUES:
            for _what, body in _poison_bodies():
                marker = f"poison-{uuid.uuid4()}"
                await channel.default_exchange.publish(
                    aio_pika.Message(body, message_id=marker, delivery_mode=2),
                    routing_key=spec.name,
                )
                sent.setdefault(spec.name, set()).add(marker)
            faults.note(f"{len(_poison_bodies())} poison messages into {spec.name}")
        await asyncio.sleep(timing.settle)
        for queue_name, markers in sent.items():
            reasons = await _dead_lettered(channel, dead_letter_queue(queue_name), markers)
            if set(reasons) != markers:
                faults.problems.append(
                    f"{queue_name}: {len(markers) - len(reasons)} poison messages not in its .dlq"
                )
            faults.problems.extend(
                f"{queue_name}: dead-lettered without a reason" for r in reasons.values() if not r
            )
    finally:
        await connection.close()


async def _dead_lettered(
    channel: aio_pika.abc.AbstractChannel, dlq: str, markers: set[str]
) -> dict[str, str]:
    """The reason each marked message was dead-lettered with, for those found in ``dlq``."""
    queue = await channel.get_queue(dlq)
    found: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while set(found) != markers and time.monotonic() < deadline:
        message = await queue.get(fail=False, no_ack=False)
        if message is None:
            await asyncio.sleep(0.2)
            continue
        if message.message_id in markers:
            found[message.message_id] = str(message.headers.get(REASON_HEADER) or "")
            await message.ack()
        else:
            await message.nack(requeue=True)
            await asyncio.sleep(0.1)
    return found


SCENARIOS = (
    Scenario(1, "RabbitMQ stopped, started, then SIGKILLed", broker_stopped_then_killed),
    Scenario(2, "PostgreSQL stopped -m immediate during sends", postgres_crashed),
    Scenario(3, "Redis restarted with nothing kept", redis_restarted_empty),
    Scenario(4, "chat SIGKILLed mid-batch, a worker mid-message", chat_and_worker_killed),
    Scenario(5, "a gateway SIGKILLed with clients on it", gateway_killed),
    Scenario(
        6,
        "the MongoDB stand-in SIGKILLed",
        mongo_killed,
        load_shape=lambda shape: dataclasses.replace(shape, large_every=4),
    ),
    Scenario(7, "a socket that never reads, in a busy room", slow_reader_in_a_busy_room),
    Scenario(8, "poison messages in every queue", poison_in_every_queue),
    Scenario(9, "a handshake storm and an oversize frame", handshake_storm),
)
FAST_SUBSET = (1, 4, 5, 8)


def _left_in_queues(stack: ChaosStack, wait: float = 60.0) -> list[str]:
    """Work queues drain once the faults are over."""
    deadline = time.monotonic() + wait
    while True:
        depths = stack.rabbit.queue_depths()
        work = {
            name: count
            for name, count in depths.items()
            if count and not name.endswith(".dlq") and not name.startswith("gateway.")
        }
        if not work or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return [f"{name} still holds {count} messages" for name, count in work.items()]


async def _dead_letter_samples(stack: ChaosStack) -> list[str]:
    """What is left in the dead-letter queues, each with its id and reason (left there)."""
    found = []
    connection = await aio_pika.connect(stack.rabbit.url)
    try:
        channel = await connection.channel()
        for spec in QUEUES:
            queue = await channel.get_queue(dead_letter_queue(spec.name))
            seen: list[str] = []
            while (message := await queue.get(fail=False, no_ack=False)) is not None:
                seen.append(f"{message.message_id} ({message.headers.get(REASON_HEADER)!s})")
            found += [f"dead-lettered in {queue.name}: {', '.join(seen)}"] if seen else []
    finally:
        await connection.close()  # what was got and not acked goes back
    return found


async def run(stack: ChaosStack, scenario: Scenario, shape: LoadShape, timing: Timing) -> Outcome:
    load = Load(stack.public_url, scenario.load_shape(shape))
    faults = Faults()
    clock = time.monotonic()

    def lap(what: str) -> None:
        nonlocal clock
        now = time.monotonic()
        print(f"[chaos]   {what}: {now - clock:.1f} s", flush=True)
        clock = now

    try:
        await load.prepare()
        lap("users, groups and sockets ready")
        load.start()
        await asyncio.sleep(timing.warmup)
        await scenario.inject(stack, load, timing, faults)
        lap("faults injected")
        await asyncio.sleep(timing.settle)
        await load.stop()
        lap("load stopped, every send answered")
        result = await audit(load)
        faults.problems += await _thread(lambda: _left_in_queues(stack))
        faults.problems += await _dead_letter_samples(stack)
        lap("audited")
    finally:
        await load.close()
    described = (
        f"{len(load.users)} users, {len(load.devices)} sockets, "
        f"{len(load.sends) / max(load.duration, 0.001):.0f} sends/s"
    )
    return Outcome(scenario, described, faults, result)
