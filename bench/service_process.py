"""A fleet service (``python -m <name>``) run as a subprocess for a benchmark: migrated first,
awaited on ``/readyz``, stopped by its own pid, its log's tail shown when the run fails."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 30


@dataclass(frozen=True, slots=True)
class ServiceProcess:
    name: str
    process: asyncio.subprocess.Process
    base_url: str
    log: Path


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "  (no output)"
    return "\n".join(f"  {line}" for line in tail) or "  (no output)"


async def migrate(name: str, env: dict[str, str], cwd: Path) -> None:
    """``python -m <name> migrate``; ``cwd`` must not be bench/, where ``-m`` finds a script."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        name,
        "migrate",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(READY_TIMEOUT_S):
        output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"python -m {name} migrate failed ({process.returncode}):\n{output!r}")


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to this process's own pid, a drain, then SIGKILL to the same pid if need be."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def wait_ready(session: aiohttp.ClientSession, service: ServiceProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if service.process.returncode is not None:
            raise RuntimeError(
                f"{service.name} exited with {service.process.returncode} before it was ready"
            )
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{service.base_url}/readyz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{service.name} was not ready within {READY_TIMEOUT_S:.0f} s")


@contextlib.asynccontextmanager
async def running_service(
    name: str, env: dict[str, str], cwd: Path, run_dir: Path
) -> AsyncIterator[ServiceProcess]:
    """``python -m <name>`` until the block ends, stopped by its pid whatever happens; its
    output goes to ``<run_dir>/<name>.log``. ``env`` must hold the service's ``PORT``."""
    log = run_dir / f"{name}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", name, env=env, cwd=cwd, stdout=output, stderr=output
        )
    service = ServiceProcess(name, process, f"http://{HOST}:{env['PORT']}", log)
    try:
        yield service
    except Exception:
        print(f"{name} output (last {LOG_TAIL_LINES} lines):\n{log_tail(log)}", file=sys.stderr)
        raise
    finally:
        await stop(process)
