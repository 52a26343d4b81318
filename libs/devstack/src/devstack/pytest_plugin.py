"""pytest fixtures shared by every test suite of the workspace.

``isolated_infra`` is the session's namespace in Postgres, RabbitMQ, Redis and MongoDB; a
suite that needs a second, independent one (the e2e fleet) asks ``isolated_infra_factory``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
