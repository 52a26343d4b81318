"""uvloop behind a setting: the same service app served on asyncio and on uvloop.

For each loop, a minimal app from ``servicekit.http_app.create_service_app`` (its middlewares:
request ids, problem documents, Prometheus metrics and the per-request log line) plus one
trivial JSON route, ``GET /echo``, is started in a subprocess the way ``run_service`` starts a
service (``uvloop.new_event_loop()`` or ``asyncio.new_event_loop()``, then ``web.run_app``).
This process is the load generator: ``--requests`` requests over ``--connections`` keep-alive
connections of one aiohttp ``ClientSession``, on uvloop whichever loop the server runs, after a
short warm-up. It prints requests/s, p50/p99 latency and the server's CPU use for each loop, and
the ratio uvloop/asyncio. A server near 100% CPU is the bottleneck; well below it, the load
generator is, and the ratio understates the difference between the loops.

Server mode (used by the benchmark itself): ``event_loops.py --serve --loop uvloop --port N``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import aiohttp
import uvloop
from aiohttp import web

from devstack.isolation import free_port
from servicekit.http_app import create_service_app, json_response
from servicekit.logs import configure_logging
from servicekit.service_main import serve_app
from servicekit.settings import HttpSettings, LogSettings

if TYPE_CHECKING:  # mypy knows bench/ as the package ``bench``; the script runs from bench/
    from bench import isolated_run, process_stats
else:
    import isolated_run
    import process_stats

LOOPS = ("asyncio", "uvloop")
HOST = "127.0.0.1"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
WARMUP_REQUESTS = 1000

type Server = tuple[subprocess.Popen[bytes], int]  # the server process and its port


@dataclass(frozen=True, slots=True)
class Options:
    requests: int
    connections: int
    rounds: int
    log_level: str


# --- server ---------------------------------------------------------------------------------


async def echo(request: web.Request) -> web.Response:
    return json_response({"echo": request.query.get("q", "")})


def exit_with_parent() -> None:
    """SIGTERM ourselves when stdin (a pipe from the load generator) closes, even if it died."""

    def watch() -> None:
        sys.stdin.buffer.read()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def serve(loop_name: str, port: int, log_level: str) -> None:
    """Run the app on the chosen loop until SIGTERM, as ``servicekit.service_main`` does."""
    exit_with_parent()
    configure_logging(LogSettings(level=log_level, format="json"), "bench")
    http = HttpSettings(
        host=HOST,
        port=port,
        max_body_bytes=1024 * 1024,
        shutdown_timeout=1.0,
        use_uvloop=loop_name == "uvloop",
    )
    app = create_service_app("bench", http)
    app.router.add_get("/echo", echo)
    serve_app(app, http)


# --- server process -------------------------------------------------------------------------


@contextlib.contextmanager
def server_process(loop_name: str, log_level: str) -> Iterator[Server]:
    """The server subprocess and its port; stopped (by its own pid) whatever happens."""
    port = free_port()
    command = [
        sys.executable,
        __file__,
        "--serve",
        f"--loop={loop_name}",
        f"--port={port}",
        f"--log-level={log_level}",
    ]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=log)
        try:
            yield process, port
        except Exception:
            print_tail(log)
            raise
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def print_tail(log: IO[bytes], lines: int = 20) -> None:
    log.seek(0)
    tail = log.read().decode(errors="replace").splitlines()[-lines:]
    print("server output:", *tail, sep="\n  ", file=sys.stderr)


# --- load generator -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measurement:
    loop: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    server_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1]

    @property
    def server_cpu_share(self) -> float:
        return self.server_cpu_seconds / self.seconds


async def wait_until_up(
    session: aiohttp.ClientSession, url: str, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"server did not answer {url} within {START_TIMEOUT_S} s")


async def drive(
    session: aiohttp.ClientSession, url: str, requests: int, connections: int
) -> tuple[list[float], int, float]:
    """``requests`` GETs from ``connections`` workers; returns latencies, errors and seconds."""
    latencies: list[float] = []
    errors = 0
    remaining = iter(range(requests))

    async def worker() -> None:
        nonlocal errors
        for _ in remaining:
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(connections):
            group.create_task(worker())
    return latencies, errors, time.perf_counter() - started


async def measure(
    loop_name: str, session: aiohttp.ClientSession, target: Server, options: Options
) -> Measurement:
    process, port = target
    url = f"http://{HOST}:{port}/echo?q=bench"
    cpu_before = process_stats.cpu_seconds(process.pid) or 0.0  # 0.0 where there is no /proc
    latencies, errors, seconds = await drive(session, url, options.requests, options.connections)
    server_cpu = (process_stats.cpu_seconds(process.pid) or 0.0) - cpu_before
    return Measurement(loop_name, options.requests, errors, seconds, latencies, server_cpu)


async def warm_up(session: aiohttp.ClientSession, target: Server, options: Options) -> None:
    process, port = target
    await wait_until_up(session, f"http://{HOST}:{port}/healthz", process)
    await drive(session, f"http://{HOST}:{port}/echo?q=bench", WARMUP_REQUESTS, options.connections)


async def measure_rounds(servers: dict[str, Server], options: Options) -> list[Measurement]:
    """Both servers stay up; rounds alternate which loop goes first, so drift hits both."""
    isolated_run.cancel_on_sigterm()  # so the servers are still stopped on the way out
    async with contextlib.AsyncExitStack() as stack:
        sessions: dict[str, aiohttp.ClientSession] = {}
        for name, target in servers.items():
            connector = aiohttp.TCPConnector(limit=options.connections)
            sessions[name] = await stack.enter_async_context(
                aiohttp.ClientSession(connector=connector)
            )
            await warm_up(sessions[name], target, options)
        measurements = []
        for round_number in range(options.rounds):
            order = LOOPS if round_number % 2 == 0 else LOOPS[::-1]
            for name in order:
                measurements.append(await measure(name, sessions[name], servers[name], options))
        return measurements


def run(options: Options) -> list[Measurement]:
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(server_process(name, options.log_level)) for name in LOOPS
        }
        return uvloop.run(measure_rounds(servers, options))


def median_round(measurements: list[Measurement], loop_name: str) -> Measurement:
    """The round with the median throughput for one loop."""
    rounds = sorted((m for m in measurements if m.loop == loop_name), key=lambda m: m.rate)
    return rounds[(len(rounds) - 1) // 2]


# --- output ---------------------------------------------------------------------------------


def render(measurements: list[Measurement]) -> str:
    lines = [
        "loop    | requests | errors | seconds |   req/s | p50 ms | p99 ms | server cpu",
        "--------+----------+--------+---------+---------+--------+--------+-----------",
    ]
    for m in measurements:
        lines.append(
            f"{m.loop:<7} | {m.requests:>8} | {m.errors:>6} | {m.seconds:>7.3f} | "
            f"{m.rate:>7,.0f} | {m.percentile(50) * 1000:>6.2f} | "
            f"{m.percentile(99) * 1000:>6.2f} | {m.server_cpu_share:>10.0%}"
        )
    return "\n".join(lines)


def ratios(fast: Measurement, slow: Measurement) -> str:
    return (
        f"uvloop/asyncio (median rounds): throughput {fast.rate / slow.rate:.2f}x, "
        f"p50 latency {fast.percentile(50) / slow.percentile(50):.2f}x, "
        f"p99 latency {fast.percentile(99) / slow.percentile(99):.2f}x"
    )


# --- entry point ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--count",
        "--requests",
        dest="requests",
        type=int,
        default=20_000,
        help="per loop and round",
    )
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5, help="measurements per loop, alternated")
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="the server's LOG_LEVEL; info (the services' default) logs one line per request",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--loop", choices=LOOPS, default="uvloop", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.requests < 100 or args.connections < 1 or args.rounds < 1:
        parser.error("--count must be at least 100, --connections and --rounds at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args.loop, args.port, args.log_level)
        return 0
    options = Options(args.requests, args.connections, args.rounds, args.log_level)
    print(
        f"requests={options.requests} connections={options.connections} rounds={options.rounds} "
        f"server_log_level={options.log_level} load_generator_loop=uvloop cores={os.cpu_count()}"
    )
    try:
        measurements = run(options)
    except asyncio.CancelledError:
        print("bench: terminated; servers stopped", file=sys.stderr)
        return 143
    print("every round, in the order run:")
    print(render(measurements))
    medians = [median_round(measurements, loop_name) for loop_name in LOOPS]
    print("median round per loop:")
    print(render(medians))
    print(ratios(medians[1], medians[0]))
    print("server cpu: the server process's CPU time per wall second (100% = one core busy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
