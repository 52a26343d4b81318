"""One run of the scenarios: a stack of our own, each chosen scenario under load in turn."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chaos.load import LoadShape
from chaos.scenarios import FAST, FULL, SCENARIOS, Outcome, run
from chaos.stack import ChaosStack

FULL_SHAPE = LoadShape(users=150, group_size=5, devices_per_user=2, send_interval=3.0)
FAST_SHAPE = LoadShape(users=24, group_size=4, devices_per_user=2, send_interval=1.0)


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
