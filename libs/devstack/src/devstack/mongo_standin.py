"""A MongoDB wire-compatible stand-in process for machines where no MongoDB can be installed.

`python -m devstack.mongo_standin [--host H] [--port P] [--engine memory|sqlite] [--path FILE]`
runs mongoeco's wire server (which ships no CLI of its own) in its own process, so the services
talk to it over the MongoDB wire protocol with PyMongo exactly as they would to a real MongoDB,
and it never shares an event loop with a service. When it accepts connections it prints one line
`MONGODB_URL=<uri>` to stdout; SIGTERM or SIGINT closes it and it exits 0.

`start_mongo_standin()` spawns that process for test harnesses and `make run`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Self

READY_PREFIX = "MONGODB_URL="
Engine = Literal["memory", "sqlite"]


class MongoStandinError(RuntimeError):
    """The stand-in process did not come up."""


def _build_engine(engine: Engine, path: str | None) -> Any:
    # Imported here so that harnesses importing this module for `start_mongo_standin` do not
    # pay for loading mongoeco in their own process.
    if engine == "sqlite":
        from mongoeco.engines.sqlite import SQLiteEngine  # noqa: PLC0415

        return SQLiteEngine(path or ":memory:")
    from mongoeco.engines.memory import MemoryEngine  # noqa: PLC0415

    return MemoryEngine()


def _mongo_uri(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"mongodb://{shown}:{port}/?directConnection=true"


async def serve(host: str, port: int, engine: Engine, path: str | None) -> None:
    """Serve until SIGTERM or SIGINT, announcing the URL on stdout once connections work."""
    from mongoeco.wire import AsyncMongoEcoProxyServer  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = AsyncMongoEcoProxyServer(engine=_build_engine(engine, path), host=host, port=port)
    address = await server.start()
    try:
        where = f"SQLite file {path}" if engine == "sqlite" and path else f"{engine} engine"
        print(
            f"!!! [mongo-standin] DEVELOPMENT STAND-IN, NOT A REAL MONGODB: mongoeco wire server "
            f"({where}) on {address.host}:{address.port}, pid {os.getpid()}. "
            "Production and compose use MongoDB 7+.",
            file=sys.stderr,
            flush=True,
        )
        print(f"{READY_PREFIX}{_mongo_uri(address.host, address.port)}", flush=True)
        await stop.wait()
    finally:
        await server.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.mongo_standin",
        description="Run mongoeco's MongoDB wire-compatible server (a development stand-in).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27018, help="0 picks a free port")
    parser.add_argument("--engine", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--path", help="SQLite database file (sqlite engine only)")
    args = parser.parse_args(argv)
    if args.path and args.engine != "sqlite":
        parser.error("--path needs --engine sqlite")
    asyncio.run(serve(args.host, args.port, args.engine, args.path))
    return 0


@dataclass
class MongoStandin:
    """A running stand-in process; `stop()` ends it."""

    url: str
    process: subprocess.Popen[bytes]
    _stderr: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, wait, SIGKILL (this pid only) as a last resort; returns the exit code."""
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
            return self.process.wait()
        finally:
            if self._stderr is not None:
                self._stderr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_mongo_standin(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    engine: Engine = "memory",
    path: str | Path | None = None,
    log_file: str | Path | None = None,
    ready_timeout: float = 30,
) -> MongoStandin:
    """Spawn `python -m devstack.mongo_standin` and return once it prints its URL.

    Its stderr goes to `log_file` (appended) or to an anonymous temporary file, never to a pipe
    nobody drains; either way it is quoted in the error when the process fails to come up.
    """
    command = [sys.executable, "-m", "devstack.mongo_standin"]
    command += ["--host", host, "--port", str(port), "--engine", engine]
    if path is not None:
        command += ["--path", str(path)]
    stderr: IO[bytes] = open(log_file, "ab") if log_file else tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)  # noqa: S603
    lines: queue.Queue[str | None] = queue.Queue()
    # A thread keeps draining stdout after the URL line, so the child can never block on it.
    threading.Thread(target=_pump_lines, args=(process, lines), daemon=True).start()
    deadline = time.monotonic() + ready_timeout
    try:
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                process.kill()
                process.wait()
                raise MongoStandinError(
                    f"mongo stand-in printed no {READY_PREFIX} line within {ready_timeout}s; "
                    f"stderr:\n{_read_back(stderr, log_file)}"
                ) from None
            if line is None:
                code = process.wait()
                raise MongoStandinError(
                    f"mongo stand-in exited with code {code} before it was ready; "
                    f"stderr:\n{_read_back(stderr, log_file)}"
                )
            if line.startswith(READY_PREFIX):
                url = line.removeprefix(READY_PREFIX).strip()
                break
    except BaseException:
        stderr.close()
        raise
    if log_file:
        stderr.close()  # the child holds its own descriptor
        return MongoStandin(url=url, process=process)
    return MongoStandin(url=url, process=process, _stderr=stderr)


def _pump_lines(process: subprocess.Popen[bytes], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        lines.put(raw.decode(errors="replace"))
    lines.put(None)


def _read_back(stderr: IO[bytes], log_file: str | Path | None) -> str:
    if log_file:
        text = Path(log_file).read_bytes()
    else:
        stderr.seek(0)
        text = stderr.read()
    return text.decode(errors="replace")[-4000:] or "(empty)"


if __name__ == "__main__":
    raise SystemExit(main())
