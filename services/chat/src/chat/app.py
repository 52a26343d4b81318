"""The chat service's composition root: the only place that builds its I/O clients."""

from __future__ import annotations

from aiohttp import web

from chat.config import SERVICE
from servicekit.http_app import create_service_app
from servicekit.migrations import MigrationSet, service_kit_migrations
from servicekit.resources import service_resources
from servicekit.settings import ServiceSettings


def migration_sets() -> list[MigrationSet]:
    return [service_kit_migrations(), MigrationSet.from_package(SERVICE)]


def create_app(settings: ServiceSettings) -> web.Application:
    app = create_service_app(SERVICE, settings.platform.http)
    app.cleanup_ctx.extend(
        service_resources(
            settings.platform,
            database_url=settings.database_url,
            mongo=settings.mongo,
            migrations=migration_sets(),
        )
    )
    return app
