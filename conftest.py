"""Shared pytest fixtures: isolated Postgres databases, RabbitMQ vhost, Redis prefix, MongoDB.

Tests under an ``integration/`` folder carry the ``integration`` marker, so ``make unit``
(``-m "not integration and not e2e"``) runs what needs no server.
"""

import pytest

pytest_plugins = ["devstack.pytest_plugin"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
