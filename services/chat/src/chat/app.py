"""The chat service's composition root: the only place that builds its I/O clients."""

from __future__ import annotations

from aiohttp import web

from chat.config import SERVICE
from servicekit.migrations import MigrationSet, service_kit_migrations
from servicekit.resources import build_service_app
from servicekit.settings import ServiceSettings


def migration_sets() -> list[MigrationSet]:
    return [service_kit_migrations(), MigrationSet.from_package(SERVICE)]


def create_app(settings: ServiceSettings) -> web.Application:
    return build_service_app(settings, migrations=migration_sets())
