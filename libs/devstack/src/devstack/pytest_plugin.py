"""pytest fixtures shared by every test suite of the workspace.

``isolated_infra`` is the session's namespace in Postgres, RabbitMQ, Redis and MongoDB; a
suite that needs a second, independent one (the e2e fleet) asks ``isolated_infra_factory``.

``broker`` is a robust RabbitMQ connection, one per test module, on ``broker_url``: the
session's vhost, unless a suite's conftest overrides ``broker_url`` with a vhost of its own.
``probe`` binds queues of the test's own on the ``chat`` exchange (``await probe(*keys)``),
deleted when the test ends; before binding it awaits ``probe_settle``, which a suite whose app
publishes through an outbox overrides with the outbox's drain, so that no earlier test's event
lands in a new probe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection

from devstack.broker_probe import Probe, ProbeQueues
from devstack.isolation import IsolatedInfra


@pytest.fixture(scope="session")
def isolated_infra_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], IsolatedInfra]]:
    opened: list[IsolatedInfra] = []

    def open_one() -> IsolatedInfra:
        run_dir: Path = tmp_path_factory.mktemp("infra")
        infra = IsolatedInfra(run_dir=run_dir)
        opened.append(infra)
        return infra.open()

    yield open_one
    for infra in reversed(opened):
        infra.close()


@pytest.fixture(scope="session")
def isolated_infra(isolated_infra_factory: Callable[[], IsolatedInfra]) -> IsolatedInfra:
    return isolated_infra_factory()


@pytest.fixture(scope="session")
def broker_url(isolated_infra: IsolatedInfra) -> str:
    """The vhost ``broker`` connects to: the session's."""
    return isolated_infra.amqp_url


@pytest.fixture(scope="module")
async def broker(
    broker_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[AbstractRobustConnection]:
    """A robust connection for the test module, named after it in RabbitMQ's management UI."""
    connection = await aio_pika.connect_robust(
        broker_url,
        client_properties={"connection_name": f"pytest {request.node.name}"},
        reconnect_interval=1,
    )
    yield connection
    await connection.close()


async def _nothing_to_settle() -> None:
    return None


@pytest.fixture
def probe_settle() -> Callable[[], Awaitable[None]]:
    """What ``probe`` awaits before it binds a queue: nothing, unless a suite overrides it."""
    return _nothing_to_settle


@pytest.fixture
async def probe(
    broker: AbstractRobustConnection, probe_settle: Callable[[], Awaitable[None]]
) -> AsyncIterator[Probe]:
    """``await probe(*routing_keys)``: a queue of the test's own that sees only what is published
    from then on; every one is deleted when the test ends."""
    queues = ProbeQueues(broker, probe_settle)
    yield queues.bind
    await queues.delete_all()
