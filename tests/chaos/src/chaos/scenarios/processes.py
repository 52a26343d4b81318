"""Faults of the fleet's own processes, SIGKILLed mid-work and started again: chat and a worker
(scenario 4), a gateway instance with its clients on it (scenario 5)."""

from __future__ import annotations

import asyncio
import time

from chaos.load import Load
from chaos.scenarios.scenario import Faults, Timing
from chaos.stack import ChaosStack


async def _restart_process(stack: ChaosStack, name: str, faults: Faults) -> None:
    await asyncio.to_thread(lambda: stack.kill_process(name))
    started = time.monotonic()
    stack.start_process(name)
    await asyncio.to_thread(lambda: stack.wait_ready([name]))
    faults.recovered_in(time.monotonic() - started)


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
    await asyncio.to_thread(lambda: stack.kill_process(victim))
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
    await asyncio.to_thread(lambda: stack.wait_ready([victim]))
    faults.note(f"{victim} started again (port {port})")
