"""A benchmark run in resources of its own, removed at the end also on failure, Ctrl-C or
SIGTERM: the process's signal setup, and a ``devstack.isolation.IsolatedInfra`` namespace."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop

from devstack.isolation import IsolatedInfra
from servicekit.logs import configure_logging
from servicekit.settings import LogSettings

if TYPE_CHECKING:
    from bench.progress import say
else:
    from progress import say


class Stopped(Exception):
    """The run was terminated (SIGTERM) or interrupted (Ctrl-C); its resources are removed."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


def set_up_process() -> None:
    """Ctrl-C and SIGTERM unwind through the ``finally`` blocks that remove the resources (a
    background job may have inherited SIGINT ignored: restore it). While an event loop runs,
    SIGTERM cancels the run instead (``cancel_on_sigterm``). Logs go to stderr: stdout carries
    the figures only (JSON must parse)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    configure_logging(LogSettings(level="warning", format="console"), "bench")


def cancel_on_sigterm() -> None:
    """SIGTERM cancels the current task, so the ``finally`` blocks still clean up."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def run_in_namespace[T](
    service: str,
    resources: str,
    run: Callable[[IsolatedInfra, Path], Coroutine[Any, Any, T]],
) -> T:
    """``run`` on uvloop in a fresh namespace (``resources`` names what it holds), then the
    namespace removed; raises ``Stopped`` on SIGTERM or Ctrl-C, once it is removed."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{service}-") as directory:
        run_dir = Path(directory)
        infra = IsolatedInfra(run_dir=run_dir)
        try:
            say(f"namespace {infra.namespace}: {resources}")
            with contextlib.redirect_stdout(sys.stderr):
                infra.open()
            return uvloop.run(run(infra, run_dir))
        except asyncio.CancelledError:  # SIGTERM while the event loop ran
            say(f"terminated; the {service} process is stopped, removing the namespace")
            raise Stopped(143) from None
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM outside the event loop
            say("interrupted; removing the namespace")
            raise Stopped(130) from None
        finally:
            # A second SIGTERM must not cut the removal short (Ctrl-C still can).
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            infra.close()
            say(f"namespace {infra.namespace} removed")


def exit_code_of[T](
    service: str,
    resources: str,
    run: Callable[[IsolatedInfra, Path], Coroutine[Any, Any, T]],
    report: Callable[[T], None],
) -> int:
    """A benchmark script's whole ``main`` after its options: the process set up, ``run`` in a
    namespace of its own, its results reported; the exit code (130 or 143 when stopped)."""
    set_up_process()
    try:
        results = run_in_namespace(service, resources, run)
    except Stopped as stopped:
        return stopped.exit_code
    report(results)
    return 0
