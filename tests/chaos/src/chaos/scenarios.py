"""The fault scenarios of ``make chaos``: each injects its faults while the load runs, then the
load stops and the audit runs (docs/reliability.md).

A fault's blocking work (stopping a server, waiting for a process to answer) runs in a worker
thread, so the clients keep sending and receiving on the event loop meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika
import socketio

from chaos.audit import Audit, audit
from chaos.load import ACK_WAIT_SECONDS, Device, Load, LoadShape, User
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


FULL = Timing(warmup=5.0, settle=10.0, outage=10.0)
FAST = Timing(warmup=2.0, settle=4.0, outage=4.0)

Inject = Callable[[ChaosStack, Load, Timing, Faults], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    number: int
    name: str
    inject: Inject


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
    for path in ("/api/users/me", "/api/chat", "/api/notifications"):
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
    Scenario(8, "poison messages in every queue", poison_in_every_queue),
)
FAST_SUBSET = (1, 4, 5, 8)


async def run(stack: ChaosStack, scenario: Scenario, shape: LoadShape, timing: Timing) -> Outcome:
    load = Load(stack.public_url, shape)
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
        lap("audited")
    finally:
        await load.close()
    described = (
        f"{len(load.users)} users, {len(load.devices)} sockets, "
        f"{len(load.sends) / max(load.duration, 0.001):.0f} sends/s"
    )
    return Outcome(scenario, described, faults, result)
