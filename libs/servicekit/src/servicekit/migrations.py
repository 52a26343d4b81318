"""Numbered ``.sql`` migrations, tracked per component in one schema-version table.

A service's database holds the service kit's own tables (outbox, processed events) and the
service's tables; each set is a *component* with files ``NNNN_description.sql`` in a package's
``migrations`` folder. Each file is applied in its own transaction, under an advisory lock so
two migrators never race. A service refuses to start against a schema newer than the newest file
it ships (it would misread the data) or older (its queries would fail):
``python -m <service> migrate`` brings the schema up to date.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from importlib.resources import files

from servicekit.logs import get_logger
from servicekit.postgres import Connection

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = zlib.crc32(b"servicekit:migrations")
_log = get_logger("servicekit.migrations")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component text NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


class SchemaMismatchError(RuntimeError):
    """The database schema is not the version this code was built for."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True, slots=True)
class MigrationSet:
    component: str
    migrations: tuple[Migration, ...]

    @property
    def newest(self) -> int:
        return self.migrations[-1].version if self.migrations else 0

    @classmethod
    def from_package(cls, package: str, folder: str = "migrations") -> MigrationSet:
        found: list[Migration] = []
        root = files(package) / folder
        for entry in root.iterdir() if root.is_dir() else ():
            match = _FILE_NAME.match(entry.name)
            if match is not None:
                sql = entry.read_text("utf-8")
                found.append(Migration(int(match["version"]), match["name"], sql))
        found.sort(key=lambda migration: migration.version)
        versions = [migration.version for migration in found]
        if versions != list(range(1, len(found) + 1)):
            raise SchemaMismatchError(f"{package} migrations must be numbered 1..n: {versions}")
        return cls(package, tuple(found))


def service_kit_migrations() -> MigrationSet:
    """The outbox and processed-events tables every publishing or consuming service needs."""
    return MigrationSet.from_package("servicekit")


async def current_versions(conn: Connection) -> dict[str, int]:
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return {}
    rows = await conn.fetch(
        "SELECT component, max(version) AS version FROM schema_migrations GROUP BY component"
    )
    return {row["component"]: row["version"] for row in rows}


def _refuse_newer(sets: list[MigrationSet], versions: dict[str, int]) -> None:
    for migration_set in sets:
        version = versions.get(migration_set.component, 0)
        if version > migration_set.newest:
            raise SchemaMismatchError(
                f"{migration_set.component} schema is at version {version}, newer than the "
                f"{migration_set.newest} this code knows; deploy newer code, never migrate down"
            )


async def apply_migrations(conn: Connection, sets: list[MigrationSet]) -> list[str]:
    """Apply what is pending; returns ``component:version`` of each file applied now."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        versions = await current_versions(conn)
        _refuse_newer(sets, versions)
        applied: list[str] = []
        for migration_set in sets:
            done = versions.get(migration_set.component, 0)
            for migration in migration_set.migrations[done:]:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (component, version, name)"
                        " VALUES ($1, $2, $3)",
                        migration_set.component,
                        migration.version,
                        migration.name,
                    )
                _log.info(
                    "migration_applied",
                    component=migration_set.component,
                    version=migration.version,
                    name=migration.name,
                )
                applied.append(f"{migration_set.component}:{migration.version}")
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def verify_schema(conn: Connection, sets: list[MigrationSet], service: str) -> None:
    """Refuse to run on a schema this code does not know."""
    versions = await current_versions(conn)
    _refuse_newer(sets, versions)
    for migration_set in sets:
        version = versions.get(migration_set.component, 0)
        if version < migration_set.newest:
            raise SchemaMismatchError(
                f"{migration_set.component} schema is at version {version}, this code needs "
                f"{migration_set.newest}; run `python -m {service} migrate` first"
            )
