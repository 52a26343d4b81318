"""``python -m <service> [serve|migrate]``: the one entry point shape of every service.

``serve`` (the default) runs the app until SIGTERM or SIGINT, then drains: the listener closes,
in-flight requests get ``SHUTDOWN_TIMEOUT`` seconds, and cleanup contexts close every connection.
``migrate`` applies the service's pending SQL migrations and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
import uvloop
from aiohttp import web

from servicekit.logs import configure_logging, get_logger
from servicekit.migrations import (
    MigrationSet,
    SchemaMismatchError,
    apply_migrations,
    verify_schema,
)
from servicekit.postgres import Pool
from servicekit.settings import HttpSettings, PlatformSettings, SettingsError

_log = get_logger("servicekit.main")


class RunnableSettings(Protocol):
    @property
    def platform(self) -> PlatformSettings: ...

    @property
    def database_url(self) -> str | None: ...


@dataclass(frozen=True)
class ServiceDefinition[S: RunnableSettings]:
    name: str
    load_settings: Callable[[], S]
    create_app: Callable[[S], web.Application]
    migrations: Callable[[], list[MigrationSet]] = field(default=list)


def schema_guard(
    pool_key: web.AppKey[Pool], sets: list[MigrationSet], service: str
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """A ``cleanup_ctx`` entry, after the pool: refuse to serve on an unknown schema."""

    @asynccontextmanager
    async def guard(app: web.Application) -> AsyncIterator[None]:
        async with app[pool_key].acquire() as conn:
            await verify_schema(conn, sets, service)
        yield

    return guard


async def migrate(database_url: str, sets: list[MigrationSet]) -> list[str]:
    conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(database_url)
    try:
        return await apply_migrations(conn, sets)
    finally:
        await conn.close()


def run_service[S: RunnableSettings](
    definition: ServiceDefinition[S], argv: Sequence[str] | None = None
) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {definition.name}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    try:
        settings = definition.load_settings()
    except SettingsError as error:
        print(f"{definition.name}: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.platform.logs, definition.name)
    if args.command == "migrate":
        if settings.database_url is None:
            _log.info("no_migrations", reason="this service owns no Postgres database")
            return 0
        applied = asyncio.run(migrate(settings.database_url, definition.migrations()))
        _log.info("migrations_done", applied=applied)
        return 0
    try:
        serve_app(definition.create_app(settings), settings.platform.http)
    except SchemaMismatchError as error:
        _log.error("schema_mismatch", error=str(error))
        return 3
    return 0


def serve_app(app: web.Application, http: HttpSettings) -> None:
    """Serve until SIGTERM/SIGINT on uvloop or asyncio's loop, then drain and clean up."""
    loop = uvloop.new_event_loop() if http.use_uvloop else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _log.info("starting", port=http.port, event_loop="uvloop" if http.use_uvloop else "asyncio")
    web.run_app(
        app,
        host=http.host,
        port=http.port,
        shutdown_timeout=http.shutdown_timeout,
        access_log=None,
        print=None,
        loop=loop,
    )
