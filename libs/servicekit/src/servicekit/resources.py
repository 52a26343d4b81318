"""The ``cleanup_ctx`` resources of a service, in the order they must open and close.

A service says which stores it owns and hands over its own resources; this module opens them
under typed app keys in one order, the same for every service:

1. the stores: Postgres with its schema guard, Redis, MongoDB;
2. the token verifier (``TOKEN_VERIFIER``), which ``authenticate`` reads on every request;
3. the service's own resources: its clients and the services its handlers and consumers use;
4. the broker side: the publisher, the outbox relay and the consumers (``messaging``).

So everything a request or a consumer needs exists before the first consumer is built and
before the app serves, and at shutdown the consumers stop before what they use is closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager

from aiohttp import web

from servicekit.http_app import create_service_app
from servicekit.messaging import ConsumerFactory, OutboxSource, messaging_resource
from servicekit.migrations import MigrationSet
from servicekit.mongo import MongoDatabase, mongo_resource
from servicekit.postgres import Pool, postgres_resource
from servicekit.redis_store import KeySpace, Redis, redis_resource
from servicekit.service_main import schema_guard
from servicekit.settings import MongoSettings, PlatformSettings, ServiceSettings
from servicekit.tokens import TOKEN_VERIFIER, RevocationList, TokenVerifier

POSTGRES: web.AppKey[Pool] = web.AppKey("postgres")
MONGO = web.AppKey("mongo", MongoDatabase)
REDIS = web.AppKey("redis", Redis)

Resource = (
    Callable[[web.Application], AbstractAsyncContextManager[None]]
    | Callable[[web.Application], AsyncIterator[None]]
)


def token_verifier_resource(platform: PlatformSettings) -> Resource:
    """A ``cleanup_ctx`` entry, after Redis: the verifier of access tokens, checking the
    revocation keys auth writes (``TOKEN_VERIFIER``)."""

    async def token_verifier(app: web.Application) -> AsyncIterator[None]:
        revocations = RevocationList(app[REDIS], KeySpace(platform.redis.key_prefix))
        app[TOKEN_VERIFIER] = TokenVerifier(platform.jwt, revocations)
        yield

    return token_verifier


def service_resources(
    platform: PlatformSettings,
    *,
    database_url: str | None = None,
    mongo: MongoSettings | None = None,
    migrations: list[MigrationSet] | None = None,
    services: Sequence[Resource] = (),
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
    resources.append(token_verifier_resource(platform))
    resources.extend(services)
    resources.append(messaging_resource(platform, outbox=outbox, consumers=consumers))
    return resources


def build_service_app(
    settings: ServiceSettings,
    *,
    migrations: list[MigrationSet] | None = None,
    services: Sequence[Resource] = (),
    consumers: Sequence[ConsumerFactory] = (),
) -> web.Application:
    """The app of a service that owns the stores its settings name, with its own ``services``
    opened after the stores and the token verifier and before the broker side, whose
    ``consumers`` read them from the app; routes are added after."""
    platform = settings.platform
    app = create_service_app(platform.service, platform.http)
    app.cleanup_ctx.extend(
        service_resources(
            platform,
            database_url=settings.database_url,
            mongo=settings.mongo,
            migrations=migrations,
            services=services,
            consumers=consumers,
        )
    )
    return app
