"""The fast subset of ``make chaos`` (scenarios 1, 4, 5 and 8, smaller load), on servers of its
own: every acknowledged message stored once, in order, and delivered to every device."""

from __future__ import annotations

import pytest

from chaos.report import markdown, problems
from chaos.run import run_all
from chaos.scenarios import FAST_SUBSET

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


async def test_the_fast_fault_scenarios_lose_and_duplicate_nothing() -> None:
    outcomes = await run_all(list(FAST_SUBSET), fast=True, keep_logs=None)
    table = markdown(outcomes)
    assert [o.scenario.number for o in outcomes] == list(FAST_SUBSET)
    for outcome in outcomes:
        assert outcome.audit.acked > 0, table
        assert outcome.passed, f"{table}\n{problems(outcomes)}"
