"""Waiting for what the fleet does asynchronously: until a condition holds, or time is up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

POLL_SECONDS = 0.05


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Return once ``condition()`` is true; TimeoutError after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(POLL_SECONDS)
