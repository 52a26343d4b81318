"""The ``cleanup_ctx`` resources of a service, in the order they must open and close.

A service says which stores it owns; this module opens them (Postgres with its schema guard,
Redis, MongoDB, then the broker side with the outbox relay and consumers) under the app keys
below, so no service wires its clients by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from aiohttp import web

from servicekit.http_app import create_service_app
from servicekit.messaging import ConsumerFactory, OutboxSource, messaging_resource
from servicekit.migrations import MigrationSet
from servicekit.mongo import MongoDatabase, mongo_resource
from servicekit.postgres import Pool, postgres_resource
from servicekit.redis_store import Redis, redis_resource
from servicekit.service_main import schema_guard
from servicekit.settings import MongoSettings, PlatformSettings, ServiceSettings

POSTGRES: web.AppKey[Pool] = web.AppKey("postgres")
MONGO = web.AppKey("mongo", MongoDatabase)
REDIS = web.AppKey("redis", Redis)

Resource = Callable[[web.Application], AbstractAsyncContextManager[None]]


def service_resources(
    platform: PlatformSettings,
    *,
    database_url: str | None = None,
    mongo: MongoSettings | None = None,
    migrations: list[MigrationSet] | None = None,
    consumers: Sequence[ConsumerFactory] = (),
) -> list[Resource]:
    resources: list[Resource] = []
    outbox: OutboxSource | None = None
    if database_url is not None:
        resources.append(postgres_resource(POSTGRES, database_url))
        resources.append(schema_guard(POSTGRES, migrations or [], platform.service))
        outbox = OutboxSource(POSTGRES, database_url)
    resources.append(redis_resource(REDIS, platform.redis))
    if mongo is not None:
        resources.append(mongo_resource(MONGO, mongo))
    resources.append(messaging_resource(platform, outbox=outbox, consumers=consumers))
    return resources


def build_service_app(
    settings: ServiceSettings,
    *,
    migrations: list[MigrationSet] | None = None,
    consumers: Sequence[ConsumerFactory] = (),
) -> web.Application:
    """The app of a service that owns the stores its settings name; routes are added after."""
    platform = settings.platform
    app = create_service_app(platform.service, platform.http)
    app.cleanup_ctx.extend(
        service_resources(
            platform,
            database_url=settings.database_url,
            mongo=settings.mongo,
            migrations=migrations,
            consumers=consumers,
        )
    )
    return app
