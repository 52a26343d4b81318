"""Scenario 7: a socket that never reads, in a busy room. The gateway must cut it before its
backlog costs the instance more than a bounded amount of memory, and the room's other sockets
must not wait on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from chaos.load import Load, User
from chaos.raw_socket import RawSocket
from chaos.scenarios.measure import p95, rss_mb
from chaos.scenarios.scenario import Faults, Timing
from chaos.stack import ChaosStack

FLOOD_PADDING = 15000  # near the longest text a message may have (16,000)
FLOOD_PER_MEMBER = 8.0  # sends/s: under RATE_LIMIT_REST_SEND_PER_USER's 10/s, so none waits
BASELINE_FLOOD_SECONDS = 15.0
AFTER_CUT_SECONDS = 5.0  # the flood goes on this long after the cut, to see the others
SLOW_MEMORY_BOUND_MB = 64.0


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
    peak = rss_mb(pid)
    while time.monotonic() < started + seconds and not done():
        peak = max(peak, rss_mb(pid))
        await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*floods)
    flooded_for = time.monotonic() - started
    await asyncio.sleep(2)  # the last deliveries arrive
    delivery_p95 = p95(load.latencies(started, time.monotonic()))
    return Flooded(peak, delivery_p95, flooded_for, len(load.sends) - sends_before)
