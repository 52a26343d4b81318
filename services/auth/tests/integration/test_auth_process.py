"""``python -m auth`` as a process: migrate, serve, refuse an unknown schema, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from devstack.isolation import IsolatedInfra, free_port
from devstack.waiting import until

pytestmark = pytest.mark.integration


@pytest.fixture
async def auth_env(isolated_infra: IsolatedInfra, tmp_path: Path) -> dict[str, str]:
    plan = isolated_infra.fleet_plan(tmp_path)
    port = free_port()
    env = plan.service_env("auth", port)
    env["DATABASE_URL"] = await isolated_infra.create_database(f"authproc_{port}")
    return {**os.environ, **env}


@dataclass(frozen=True)
class Finished:
    returncode: int
    stderr: str


async def run_auth(env: dict[str, str], *args: str) -> Finished:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auth", *args, env=env, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()
    assert process.returncode is not None
    return Finished(process.returncode, stderr.decode())


async def wait_ready(port: int, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:

        async def ready() -> bool:
            if process.returncode is not None:
                raise AssertionError(f"auth exited with {process.returncode} before it was ready")
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await until(ready, timeout=30, interval=0.2, what=f"auth to be ready on {port}")


async def test_migrate_then_serve_then_drain_on_sigterm(auth_env: dict[str, str]) -> None:
    migrated = await run_auth(auth_env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "migration_applied" in migrated.stderr
    assert (await run_auth(auth_env, "migrate")).returncode == 0  # idempotent

    port = int(auth_env["PORT"])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auth", env=auth_env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await wait_ready(port, process)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()


async def test_refuses_to_start_on_a_newer_schema(auth_env: dict[str, str]) -> None:
    assert (await run_auth(auth_env, "migrate")).returncode == 0
    conn = await asyncpg.connect(auth_env["DATABASE_URL"])
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (component, version, name)"
            " VALUES ('auth', 999, 'future')"
        )
    finally:
        await conn.close()

    served = await run_auth(auth_env)
    assert served.returncode == 3
    assert "newer than" in served.stderr


async def test_refuses_to_start_before_migrations(auth_env: dict[str, str]) -> None:
    served = await run_auth(auth_env)
    assert served.returncode == 3
    assert "run `python -m auth migrate` first" in served.stderr


async def test_bad_configuration_fails_fast_naming_the_variable(auth_env: dict[str, str]) -> None:
    env = {**auth_env, "APP_ENV": "production", "JWT_SECRET": "short"}
    failed = await run_auth(env)
    assert failed.returncode == 2
    assert "JWT_SECRET must be at least 32 bytes" in failed.stderr
    assert "short" not in failed.stderr  # the secret's value is never echoed
