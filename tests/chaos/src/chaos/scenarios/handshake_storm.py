"""Scenario 9: a storm of Socket.IO handshakes, most with bad tokens, and a frame over
``SOCKET_IO_MAX_PAYLOAD``. Each handshake must get its right answer, the oversize frame's
connection must close, and the load's own sockets must stay connected and timely."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable

from chaos.load import Load, User
from chaos.raw_socket import RawSocket
from chaos.scenarios.measure import handshake_accepted, p95
from chaos.scenarios.scenario import Faults, Timing
from chaos.stack import ChaosStack


async def handshake_storm(stack: ChaosStack, load: Load, timing: Timing, faults: Faults) -> None:
    storm_from = time.monotonic()
    before = load.latencies(load.started_at + 1, storm_from)
    connected_before = sum(d.connections for d in load.devices)
    good = load.users[: max(len(load.users) // 4, 1)]
    bad_tokens = ["", "not-a-jwt", good[0].token[:-4] + "AAAA", f"{good[0].token}x"]
    attempts = [(t, False) for t in bad_tokens * (timing.storm // len(bad_tokens))]
    attempts += [(u.token, True) for u in good]
    random.Random(9).shuffle(attempts)
    outcomes = await _bounded(
        [handshake_accepted(load.url, token) for token, _ in attempts], limit=32
    )
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
        f"other sockets' p95 delivery {p95(before) * 1000:.0f} ms before, "
        f"{p95(during) * 1000:.0f} ms during"
    )
    if sum(d.connections for d in load.devices) != connected_before:
        faults.problems.append("sockets of the load were disconnected by the storm")
    if p95(during) > 3 * p95(before) + 0.25:
        faults.problems.append("the other sockets' delivery slowed down")


async def _bounded(work: list[Awaitable[bool]], limit: int) -> list[bool]:
    gate = asyncio.Semaphore(limit)

    async def one(item: Awaitable[bool]) -> bool:
        async with gate:
            return await item

    return await asyncio.gather(*(one(item) for item in work))


async def _oversize_frame_is_refused(stack: ChaosStack, user: User) -> bool:
    instance = stack.instance_names("gateway")[0]
    raw = await RawSocket.connect("127.0.0.1", stack.instance_port(instance), user.token)
    try:
        limit = int(stack.processes[instance].env.get("SOCKET_IO_MAX_PAYLOAD", 64 * 1024))
        raw.send_text(b'42["presence:get",{"userIds":["' + b"x" * limit + b'"]}]')
        return await raw.closed_by_server(within=10)
    finally:
        raw.close()
