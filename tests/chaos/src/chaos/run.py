"""One run of the scenarios: a stack of our own, each chosen scenario under load in turn, then
its audit, the work queues drained and the dead-letter queues looked into."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import aio_pika

from chaos.audit import Audit, audit
from chaos.load import Load, LoadShape
from chaos.scenarios import SCENARIOS
from chaos.scenarios.scenario import FAST, FULL, Faults, Scenario, Timing
from chaos.stack import ChaosStack
from contracts.names import dead_letter_queue
from contracts.topology import QUEUES
from servicekit.amqp.consumer import REASON_HEADER

FULL_SHAPE = LoadShape(users=150, group_size=5, devices_per_user=2, send_interval=3.0)
FAST_SHAPE = LoadShape(users=24, group_size=4, devices_per_user=2, send_interval=1.0)


@dataclass
class Outcome:
    scenario: Scenario
    load: str
    faults: Faults
    audit: Audit

    @property
    def passed(self) -> bool:
        return self.audit.passed and not self.faults.problems


async def run_all(numbers: list[int], fast: bool, keep_logs: Path | None) -> list[Outcome]:
    shape, timing = (FAST_SHAPE, FAST) if fast else (FULL_SHAPE, FULL)
    # Hundreds of registrations: bcrypt's cost is not what these scenarios measure.
    stack = ChaosStack(extra_env={"BCRYPT_ROUNDS": "4"})
    outcomes: list[Outcome] = []
    try:
        await asyncio.to_thread(stack.start)
        for scenario in SCENARIOS:
            if scenario.number in numbers:
                print(f"[chaos] scenario {scenario.number}: {scenario.name}…", flush=True)
                outcome = await run(stack, scenario, shape, timing)
                outcomes.append(outcome)
                verdict = "pass" if outcome.passed else "FAIL"
                print(f"[chaos] scenario {scenario.number}: {verdict}", flush=True)
    finally:
        if keep_logs is not None:
            stack.keep_logs(keep_logs)
        await asyncio.to_thread(stack.stop)
    return outcomes


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
        faults.problems += await asyncio.to_thread(lambda: _left_in_queues(stack))
        faults.problems += await _dead_letter_samples(stack)
        lap("audited")
    finally:
        await load.close()
    described = (
        f"{len(load.users)} users, {len(load.devices)} sockets, "
        f"{len(load.sends) / max(load.duration, 0.001):.0f} sends/s"
    )
    return Outcome(scenario, described, faults, result)


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
