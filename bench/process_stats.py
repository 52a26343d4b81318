"""What the benchmarks read from /proc: a process's CPU time (all its threads) and resident
memory, the whole machine's busy jiffies, a process's descendants, and the pids of the local
servers (the RabbitMQ node, Postgres, Redis) found by their command name."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

type Jiffies = tuple[int, int]  # (busy, total) over all cores since boot

BROKER_COMMAND = "beam.smp"  # the local RabbitMQ node's Erlang VM


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, all its threads, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text("ascii").rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds of each pid that could be read (one that has exited is left out)."""
    return {pid: cpu for pid in pids if (cpu := cpu_seconds(pid)) is not None}


def cpu_spent(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    """CPU seconds spent between two ``cpu_of`` readings; a pid born in between counts whole."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


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


def rss_kib(pid: int) -> int:
    """A process's resident memory (VmRSS) in KiB, from /proc/<pid>/status (0 if unreadable)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children_map() -> dict[int, list[int]]:
    """Every live process's children, by parent pid."""
    found: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                found.setdefault(int(stat[1]), []).append(int(entry.name))
    return found


def descendants(root: int, exclude: set[int]) -> list[int]:
    """The processes below ``root`` (not itself), leaving out ``exclude`` and what is below it."""
    tree = children_map()
    result: list[int] = []
    pending = list(tree.get(root, []))
    while pending:
        pid = pending.pop()
        if pid in exclude:
            continue
        result.append(pid)
        pending.extend(tree.get(pid, []))
    return result


def pids_by_command(commands: Mapping[str, str]) -> dict[int, str]:
    """Every process whose command name (/proc/<pid>/comm) is a key of ``commands``, mapped to
    that key's value (a name for the group it counts in)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                name = commands.get((entry / "comm").read_text().strip())
                if name is not None:
                    found[int(entry.name)] = name
    return found


def broker_pids() -> tuple[int, ...]:
    """The local RabbitMQ node's ``beam.smp`` (none when the broker runs elsewhere)."""
    return tuple(pids_by_command({BROKER_COMMAND: "rabbitmq"}))
