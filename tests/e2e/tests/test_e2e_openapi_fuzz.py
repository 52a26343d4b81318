"""Every served OpenAPI document holds under schemathesis: all of its checks, every phase
(examples, coverage, fuzzing, stateful), through the API gateway as a client would call it.

The run authenticates with accounts of its own (``e2e.schemathesis_hooks``). Its seed is fixed
so that a failure here reproduces with the command in the assertion message.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.fleet import RunningFleet
from e2e.schemathesis_hooks import PUBLIC_URL_ENV

DOCUMENTS = (
    "/api/auth/openapi.json",
    "/api/chat/openapi.json",
    "/api/notifications/openapi.json",
)
CONFIG = Path(__file__).resolve().parents[1] / "schemathesis.toml"
MAX_EXAMPLES = 15
SEED = 16
RUN_TIMEOUT_SECONDS = 240


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 30)
@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_served_document_holds_under_schemathesis(
    fleet: RunningFleet, document: str, tmp_path: Path
) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{fleet.public_url}{document}",
        "--url",
        fleet.public_url,
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "2",
        "--request-timeout",
        "10",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "e2e.schemathesis_hooks",
        PUBLIC_URL_ENV: fleet.public_url,
        "NO_COLOR": "1",
    }
    run = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    output = tmp_path / "schemathesis.txt"
    output.write_text(f"{shlex.join(command)}\n{run.stdout}\n{run.stderr}")
    assert run.returncode == 0, (
        f"{run.stdout[-12000:]}\n{run.stderr[-4000:]}\n(all of it: {output})"
    )
