"""Progress lines on stderr: stdout carries the figures only (JSON must parse)."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
