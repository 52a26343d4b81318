"""Faults of the durable stores: PostgreSQL crashed during sends (scenario 2) and the MongoDB
stand-in SIGKILLed while small messages go on (scenario 6)."""

from __future__ import annotations

import asyncio
import time

from chaos.load import Load
from chaos.scenarios.scenario import Faults, Timing, start_again
from chaos.stack import ChaosStack

# 2. PostgreSQL crashes


async def postgres_crashed(stack: ChaosStack, _: Load, timing: Timing, faults: Faults) -> None:
    await asyncio.to_thread(lambda: stack.postgres.stop("immediate"))
    faults.note(f"PostgreSQL stopped -m immediate for {timing.outage:.0f} s")
    await asyncio.sleep(timing.outage)
    await start_again(stack, stack.postgres.start, faults)  # crash recovery from the WAL


# 6. The MongoDB stand-in


async def mongo_killed(stack: ChaosStack, load: Load, timing: Timing, faults: Faults) -> None:
    await asyncio.to_thread(stack.mongo.kill)
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
    await asyncio.to_thread(stack.mongo.start)
    await asyncio.to_thread(stack.wait_ready)
    faults.recovered_in(time.monotonic() - back_at)
