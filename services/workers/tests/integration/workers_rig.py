"""The workers under test, in-process: ``StartWorkers`` (the ``start_workers`` fixture of
``conftest.py``) serves the real app from an environment and answers a ``StartedWorkers``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class StartedWorkers:
    app: web.Application
    url: str


StartWorkers = Callable[[dict[str, str]], Awaitable[StartedWorkers]]
