"""A coroutine run as a task for the length of a block (a relay, a publisher loop), cancelled
and awaited when the block ends, for tests and benchmarks that drive a service part by hand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def in_background[T](work: Coroutine[Any, Any, T]) -> AsyncIterator[asyncio.Task[T]]:
    """``work`` as a task while the block runs; cancelled, and awaited, once it ends."""
    task = asyncio.create_task(work)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
