"""The table ``make chaos`` prints and writes into docs/reliability.md."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

from chaos.run import Outcome

HEADERS = (
    "#", "scenario", "load held", "faults injected", "acked", "lost", "duplicated",
    "out of order", "max recovery", "verdict",
)  # fmt: skip
BEGIN = "<!-- chaos-table:begin -->"
END = "<!-- chaos-table:end -->"


def rows(outcomes: list[Outcome]) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for outcome in outcomes:
        audit = outcome.audit
        acked = f"{audit.acked}/{audit.sends}"
        recovery = max(outcome.faults.recovery, audit.max_ack_wait)
        found.append(
            (
                str(outcome.scenario.number),
                outcome.scenario.name,
                outcome.load,
                "; ".join(outcome.faults.done),
                acked,
                str(audit.lost + audit.undelivered),
                str(audit.duplicated),
                str(audit.out_of_order),
                f"{recovery:.1f} s",
                "pass" if outcome.passed else "FAIL",
            )
        )
    return found


def markdown(outcomes: list[Outcome]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += [
        "| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows(outcomes)
    ]
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.node()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def write_into(doc: Path, outcomes: list[Outcome], command: str) -> None:
    """Replace the table between the markers of ``doc`` with this run's."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{BEGIN}\nRun {stamp} on {machine()}: `{command}`.\n\n{markdown(outcomes)}\n{END}"
    text = doc.read_text() if doc.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    doc.write_text(pattern.sub(lambda _: block, text, count=1))


def problems(outcomes: list[Outcome]) -> str:
    lines = []
    for outcome in outcomes:
        for problem in [*outcome.faults.problems, *outcome.audit.problems][:20]:
            lines.append(f"  scenario {outcome.scenario.number}: {problem}")
    return "\n".join(lines)
