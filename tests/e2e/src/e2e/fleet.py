"""The whole fleet in process mode for a test session: ``RunningFleet``.

It runs exactly what ``python -m devstack up`` runs (``prepare`` then honcho with the
Procfile), inside an :class:`~devstack.isolation.IsolatedInfra` namespace of its own, on free
ports, and waits until every service answers ``/readyz`` through nginx.

Process ownership: honcho is started in a new session, so its process group is ours. honcho
starts every Procfile entry in a session of its own (``start_new_session=True`` in
``honcho.process.Popen``), so signalling honcho's group does not reach the services: on
SIGTERM honcho forwards it to them itself (and SIGKILLs them after 5 s). Only when honcho
itself does not exit in time does ``stop()`` SIGKILL honcho's group and then the groups of
the descendants it recorded while the fleet ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from devstack.fleet import SERVICES, FleetPlan, honcho_command, prepare
from devstack.isolation import IsolatedInfra

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
LOG_TAIL_LINES = 80
_HONCHO_SIGKILL = re.compile(r"sending SIGKILL to (\S+)")


class FleetStartError(RuntimeError):
    """The fleet did not become ready; the message carries the tail of its log."""


class FleetShutdownWarning(UserWarning):
    """Some process of the fleet did not stop on SIGTERM and had to be SIGKILLed."""


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of ``GET url``, or ``None`` when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http only
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """``(ppid, pgid)`` of a live (not zombie) process, from ``/proc/<pid>/stat``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; it ends at the last ')'.
    state, ppid, pgid = text[text.rindex(")") + 2 :].split()[:3]
    if state in ("Z", "X"):
        return None
    return int(ppid), int(pgid)


def _all_processes() -> dict[int, tuple[int, int]]:
    found: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None:
                found[int(entry.name)] = stat
    return found


def descendant_groups(root_pid: int) -> set[int]:
    """Process groups of every descendant of ``root_pid`` (honcho's children lead their own)."""
    processes = _all_processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in processes.items():
        children.setdefault(ppid, []).append(pid)
    groups: set[int] = set()
    pending = list(children.get(root_pid, []))
    while pending:
        pid = pending.pop()
        groups.add(processes[pid][1])
        pending.extend(children.get(pid, []))
    return groups


def live_members(groups: Iterable[int]) -> list[int]:
    """Pids of live processes in any of ``groups``."""
    wanted = set(groups)
    return sorted(pid for pid, (_, pgid) in _all_processes().items() if pgid in wanted)


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


class RunningFleet:
    """The fleet behind nginx, from ``start()`` (or ``with``) until ``stop()``.

    ``infra`` must already be open (``isolated_infra_factory()``); the fleet's Postgres
    databases are handed to it, so closing the infra removes them with the rest of the
    namespace.
    """

    def __init__(
        self,
        infra: IsolatedInfra,
        run_dir: Path,
        *,
        gateways: int = 2,
        ready_timeout: float = READY_TIMEOUT_SECONDS,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.infra = infra
        plan = infra.fleet_plan(run_dir, gateways=gateways)
        self.plan: FleetPlan = dataclasses.replace(
            plan, extra_env={**plan.extra_env, **(extra_env or {})}
        )
        self.log_path = run_dir / "fleet.log"
        self.ready_timeout = ready_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._groups: set[int] = set()
        self.force_killed: list[str] = []

    @property
    def public_url(self) -> str:
        return self.plan.public_url

    @property
    def access_log_path(self) -> Path:
        """nginx's JSON access log (one object per line, with the upstream address)."""
        return self.plan.run_dir / "access.log"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return _log_tail(self.log_path, lines)

    def access_log(self) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = []
        with contextlib.suppress(FileNotFoundError):
            for line in self.access_log_path.read_text().splitlines():
                if line.strip():
                    entries.append(json.loads(line))
        return entries

    # lifecycle

    def start(self) -> Self:
        # Adopted first: should `prepare` fail half-way, whatever it created is dropped too
        # (the infra drops with IF EXISTS).
        self.infra.adopt_fleet_databases()
        procfile = prepare(self.plan, start_infra=False)
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
        env["PYTHONUNBUFFERED"] = "1"  # the log tail on failure is complete
        self._log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(
            honcho_command(procfile),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._groups |= descendant_groups(self._process.pid)
        return self

    def _ready_phases(self) -> list[list[str]]:
        """Every instance on its own port first, then every service through nginx.

        nginx is asked only once the instances listen: a request it cannot connect marks that
        upstream server failed (``max_fails=1``, ``fail_timeout=10s`` by default), and while it
        recovers the ``hash ... consistent`` gateway upstream sends concurrent requests meant
        for it to the other instance, which breaks sticky long-polling.
        """
        direct = [
            f"http://127.0.0.1:{port}/readyz"
            for service in SERVICES
            for port in self.plan.service_ports[service]
        ]
        routed = [f"{self.public_url}/api/{service}/readyz" for service in SERVICES]
        return [direct, routed]

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.ready_timeout
        for phase in self._ready_phases():
            pending = phase
            while pending:
                if self._process.poll() is not None:
                    raise FleetStartError(
                        f"honcho exited with {self._process.returncode} before the fleet was "
                        f"ready; {self.log_path}:\n{self.log_tail()}"
                    )
                # Remember the groups while they exist, for the last-resort kill.
                self._groups |= descendant_groups(self._process.pid)
                pending = [url for url in pending if http_status(url) != 200]
                if not pending:
                    break
                if time.monotonic() > deadline:
                    raise FleetStartError(
                        f"fleet not ready after {self.ready_timeout:.0f} s, still waiting for "
                        f"{', '.join(pending)}; {self.log_path}:\n{self.log_tail()}"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM honcho's group and wait; SIGKILL what is left as a last resort."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                self._groups |= descendant_groups(process.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        leftovers = live_members(self._groups)
        if leftovers:
            # honcho did not stop its children (it had to be killed itself): each of them
            # leads a process group of its own, recorded while the fleet ran.
            for group in self._groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while live_members(self._groups) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.force_killed.append(f"pids {leftovers} (left behind by honcho)")
        self._groups.clear()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if process is not None:
            # honcho SIGKILLs what did not stop within 5 s of its SIGTERM, and says so.
            self.force_killed[:0] = sorted(
                {match.group(1) for match in _HONCHO_SIGKILL.finditer(self.log_tail(400))}
            )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
