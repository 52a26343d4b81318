"""What every scenario is: a numbered, named fault to inject while the load runs, the timing
it runs to, and the record it keeps of what it did (``Faults``); and the end of most server
faults, the server started again and the fleet waited for (``start_again``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from chaos.load import Load, LoadShape
from chaos.stack import ChaosStack


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
"""Injects a scenario's faults while the load runs. Its blocking work (stopping a server,
waiting for a process to answer) runs in a worker thread, so the clients keep sending and
receiving on the event loop meanwhile."""


@dataclass(frozen=True)
class Scenario:
    number: int
    name: str
    inject: Inject
    load_shape: Callable[[LoadShape], LoadShape] = lambda shape: shape


async def start_again(stack: ChaosStack, start: Callable[[], None], faults: Faults) -> None:
    """``start`` a stopped or killed server, then wait until the whole fleet answers again;
    the time both took is a recovery."""
    started = time.monotonic()
    await asyncio.to_thread(start)
    await asyncio.to_thread(stack.wait_ready)
    faults.recovered_in(time.monotonic() - started)
