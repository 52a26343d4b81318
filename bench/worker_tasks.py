"""Items worked off by a fixed number of concurrent tasks, as the benchmarks drive their load."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable


async def run_workers[T](
    workers: int, items: Iterable[T], work: Callable[[T], Awaitable[None]]
) -> None:
    """``workers`` tasks taking items off one shared iterator until it is exhausted."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await work(item)

    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())
