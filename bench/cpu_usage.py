"""CPU time from /proc: a process's (all its threads), and the whole machine's busy jiffies."""

from __future__ import annotations

import os
from pathlib import Path

type Jiffies = tuple[int, int]  # (busy, total) over all cores since boot


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, all its threads, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text("ascii").rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_jiffies() -> Jiffies | None:
    """(busy, total) jiffies over all cores since boot, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: Jiffies | None, after: Jiffies | None) -> float | None:
    """The share of all cores busy between two readings (None if either is missing)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def busy_seconds(before: Jiffies | None, after: Jiffies | None) -> float | None:
    """CPU seconds of all cores, every process included, between two readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / os.sysconf("SC_CLK_TCK")
