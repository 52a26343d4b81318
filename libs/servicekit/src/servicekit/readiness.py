"""Readiness checks: each dependency a service uses, probed for real on every /readyz."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Probe = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class DependencyCheck:
    name: str
    probe: Probe


async def failing_dependencies(checks: list[DependencyCheck], timeout: float = 2.0) -> list[str]:
    """Names of the dependencies whose probe failed or did not answer within ``timeout``."""

    async def is_down(check: DependencyCheck) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await check.probe()
        except Exception:
            return True
        return False

    results = await asyncio.gather(*(is_down(check) for check in checks))
    return [check.name for check, down in zip(checks, results, strict=True) if down]
