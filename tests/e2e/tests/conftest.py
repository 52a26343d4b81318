"""Fixtures of the e2e suite: one fleet per session, in a namespace of its own.

Every test collected under this directory carries the ``e2e`` marker (``-m "not e2e"`` skips
the suite).
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as redis

from devstack.isolation import IsolatedInfra
from devstack.push_standins import PushStandins, running_push_standins
from e2e.fleet import FleetShutdownWarning, FleetStartError, RunningFleet

_HERE = Path(__file__).parent.resolve()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.resolve().is_relative_to(_HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
async def push_standins() -> AsyncIterator[PushStandins]:
    """Web Push, APNs and FCM stand-ins the fleet's workers push to (docs/notifications.md)."""
    async with running_push_standins() as running:
        yield running


@pytest.fixture(scope="session")
def fleet(
    isolated_infra_factory: Callable[[], IsolatedInfra],
    tmp_path_factory: pytest.TempPathFactory,
    push_standins: PushStandins,
) -> Iterator[RunningFleet]:
    """auth, chat, two gateways and workers behind nginx, until the session ends."""
    infra = isolated_infra_factory()  # its own vhost, databases and keys: no shared queues
    running = RunningFleet(
        infra,
        tmp_path_factory.mktemp("e2e-fleet"),
        gateways=2,
        extra_env=push_standins.env(),
    )
    failure: str | None = None
    try:
        running.start()
    except FleetStartError as error:
        failure = str(error)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield running
    finally:
        running.stop()
    if running.force_killed:
        warnings.warn(
            f"did not stop on SIGTERM and were SIGKILLed: {', '.join(running.force_killed)}; "
            f"see {running.log_path}",
            FleetShutdownWarning,
            stacklevel=1,
        )


@pytest.fixture(scope="session")
async def http(fleet: RunningFleet) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client of the API gateway (the one public origin)."""
    async with aiohttp.ClientSession(
        base_url=fleet.public_url, timeout=aiohttp.ClientTimeout(total=10)
    ) as session:
        yield session


@pytest.fixture(scope="session")
async def fleet_redis(fleet: RunningFleet) -> AsyncIterator[redis.Redis]:
    """The Redis the fleet uses; keys must go under ``fleet.plan.redis_prefix``."""
    client: redis.Redis = redis.Redis.from_url(fleet.plan.redis_url)
    try:
        yield client
    finally:
        await client.aclose()
