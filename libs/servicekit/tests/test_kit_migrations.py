"""Numbered SQL migrations with a schema-version table, on a real Postgres database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from devstack.isolation import IsolatedInfra
from servicekit.migrations import (
    Migration,
    MigrationSet,
    SchemaMismatchError,
    apply_migrations,
    current_versions,
    service_kit_migrations,
    verify_schema,
)

pytestmark = pytest.mark.integration

NOTES_V1 = MigrationSet(
    "notes", (Migration(1, "create_notes", "CREATE TABLE notes (id int PRIMARY KEY)"),)
)
NOTES_V2 = MigrationSet(
    "notes",
    (
        *NOTES_V1.migrations,
        Migration(2, "add_body", "ALTER TABLE notes ADD COLUMN body text NOT NULL DEFAULT ''"),
    ),
)


@pytest.fixture
async def conn(isolated_infra: IsolatedInfra) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    url = await isolated_infra.create_database(f"migrations_{uuid.uuid4().hex[:8]}")
    connection: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(url)
    yield connection
    await connection.close()


async def test_applies_pending_files_in_order_once(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    sets = [service_kit_migrations(), NOTES_V2]
    assert await apply_migrations(conn, sets) == ["servicekit:1", "notes:1", "notes:2"]
    assert await apply_migrations(conn, sets) == []
    assert await current_versions(conn) == {"servicekit": 1, "notes": 2}
    await verify_schema(conn, sets, "notes")
    await conn.execute("INSERT INTO notes (id, body) VALUES (1, 'x')")


async def test_upgrades_an_older_schema(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    await apply_migrations(conn, [NOTES_V1])
    with pytest.raises(SchemaMismatchError, match="run `python -m notes migrate` first"):
        await verify_schema(conn, [NOTES_V2], "notes")
    assert await apply_migrations(conn, [NOTES_V2]) == ["notes:2"]
    await verify_schema(conn, [NOTES_V2], "notes")


async def test_refuses_a_schema_newer_than_the_code(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    await apply_migrations(conn, [NOTES_V2])
    with pytest.raises(SchemaMismatchError, match="newer than the 1 this code knows"):
        await verify_schema(conn, [NOTES_V1], "notes")
    with pytest.raises(SchemaMismatchError, match="never migrate down"):
        await apply_migrations(conn, [NOTES_V1])


async def test_a_failing_file_leaves_no_partial_change(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    broken = MigrationSet(
        "notes",
        (
            *NOTES_V1.migrations,
            Migration(2, "broken", "ALTER TABLE notes ADD COLUMN a int; SELECT * FROM missing"),
        ),
    )
    with pytest.raises(asyncpg.UndefinedTableError):
        await apply_migrations(conn, [broken])
    assert await current_versions(conn) == {"notes": 1}
    columns = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'notes'"
    )
    assert [row["column_name"] for row in columns] == ["id"]


def test_service_packages_ship_gap_free_numbered_files() -> None:
    kit = service_kit_migrations()
    assert [m.version for m in kit.migrations] == list(range(1, len(kit.migrations) + 1))
    assert "CREATE TABLE outbox" in kit.migrations[0].sql
