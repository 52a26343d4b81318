"""The auth service's composition root: the only place that builds its I/O clients.

``create_app`` opens, in order: the stores and the token verifier (the kit's), ``auth_services``
(the password hasher, the HTTP client to chat, the services the handlers use under typed app
keys, and the revocation keys made whole before the first request), then the broker side
(the outbox relay; auth consumes no queue).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from auth.account_service import AccountService
from auth.avatar_check import AvatarCheck
from auth.config import SERVICE, AuthSettings
from auth.handlers import ACCOUNT_SERVICE, AUTH_SERVICE, PROFILE_SERVICE
from auth.passwords import PasswordHasher
from auth.profile_service import ProfileService
from auth.profiles import ProfileStore
from auth.repository import AccountRepository
from auth.revocation_rebuild import RevocationRebuilder
from auth.routes import ENDPOINTS, OPENAPI_PATH
from auth.service import AuthService
from servicekit.migrations import MigrationSet, service_kit_migrations
from servicekit.openapi import add_endpoints, openapi_document, openapi_route
from servicekit.peer_api import PeerApi
from servicekit.rate_limit import RateLimiter
from servicekit.redis_store import KeySpace
from servicekit.resources import MONGO, POSTGRES, REDIS, build_service_app
from servicekit.tokens import RevocationList, TokenIssuer
from servicekit.unit_of_work import PostgresUnitOfWork


def migration_sets() -> list[MigrationSet]:
    return [service_kit_migrations(), MigrationSet.from_package(SERVICE)]


def create_app(settings: AuthSettings) -> web.Application:
    platform = settings.platform

    async def auth_services(app: web.Application) -> AsyncIterator[None]:
        keys = KeySpace(platform.redis.key_prefix)
        revocations = RevocationList(app[REDIS], keys)
        hasher = PasswordHasher(settings.bcrypt_rounds, settings.bcrypt_max_pending)
        await hasher.warm_up()
        accounts, profiles = AccountRepository(), ProfileStore(app[MONGO])
        limiter = RateLimiter(app[REDIS], keys)
        uow = PostgresUnitOfWork(app[POSTGRES], SERVICE)
        app[AUTH_SERVICE] = AuthService(
            uow=uow,
            accounts=accounts,
            profiles=profiles,
            hasher=hasher,
            issuer=TokenIssuer(platform.jwt),
            revocations=revocations,
            limiter=limiter,
            limits=settings.limits,
            access_token_seconds=platform.jwt.expiration_seconds,
            refresh_token_seconds=settings.refresh_token_seconds,
        )
        app[ACCOUNT_SERVICE] = AccountService(
            uow=uow,
            accounts=accounts,
            profiles=profiles,
            hasher=hasher,
            revocations=revocations,
            limiter=limiter,
            limits=settings.limits,
            access_token_seconds=platform.jwt.expiration_seconds,
        )
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        app[PROFILE_SERVICE] = ProfileService(
            uow=uow,
            profiles=profiles,
            avatars=AvatarCheck(PeerApi(http, settings.chat_url, "chat")),
        )
        rebuilder = RevocationRebuilder(
            pool=app[POSTGRES],
            accounts=accounts,
            revocations=revocations,
            access_token_seconds=platform.jwt.expiration_seconds,
        )
        await rebuilder.ensure()  # before the first request: tokens are checked from the start
        watching = asyncio.create_task(rebuilder.watch(), name="revocation-rebuild")
        yield
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        await http.close()

    app = build_service_app(settings.service, migrations=migration_sets(), services=[auth_services])
    add_endpoints(app, ENDPOINTS)
    document = openapi_document(title="Chat auth API", version="1", endpoints=ENDPOINTS)
    app.router.add_routes([openapi_route(OPENAPI_PATH, document)])
    return app
