"""``python -m chaos [--fast] [--only 1,4] [--write docs/reliability.md]``: run the fault
scenarios under load on servers of our own; exit 1 on any loss, duplicate or gap."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path

from chaos.report import markdown, problems, write_into
from chaos.run import run_all
from chaos.scenarios import FAST_SUBSET, SCENARIOS


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos")
    parser.add_argument("--fast", action="store_true", help=f"scenarios {FAST_SUBSET}, small load")
    parser.add_argument("--only", help="comma-separated scenario numbers")
    parser.add_argument("--write", type=Path, help="put the table into this document")
    parser.add_argument("--keep-logs", type=Path, help="copy the fleet's logs here")
    args = parser.parse_args(argv)
    numbers = (
        [int(n) for n in args.only.split(",")]
        if args.only
        else list(FAST_SUBSET if args.fast else [s.number for s in SCENARIOS])
    )
    outcomes = asyncio.run(run_all(numbers, args.fast, args.keep_logs))
    print(markdown(outcomes))
    found = problems(outcomes)
    if found:
        print(found)
    if args.write:
        write_into(args.write, outcomes, shlex.join(["python", "-m", "chaos", *argv]))
    return 0 if outcomes and all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
