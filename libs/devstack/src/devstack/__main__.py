"""``python -m devstack up``: set up what is missing and run the fleet on http://localhost:3000.

Reads (all optional): FLEET_PORT (3000), POSTGRES_URL (admin URL of the server holding the
``auth`` and ``chat`` databases), RABBITMQ_URL, REDIS_URL, REDIS_KEY_PREFIX, MONGODB_URL (unset:
a local MongoDB wire stand-in is started), JWT_SECRET (unset: one is generated once and kept in
``.run/jwt_secret``), GATEWAY_INSTANCES (1), LOG_FORMAT (console).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import NoReturn

from devstack.fleet import FleetPlan, honcho_command, prepare
from devstack.nginx import repo_root


def _jwt_secret(run_dir: Path) -> str:
    from_env = os.environ.get("JWT_SECRET")
    if from_env:
        return from_env
    kept = run_dir / "jwt_secret"
    if not kept.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        kept.write_text(secrets.token_urlsafe(48))
        kept.chmod(0o600)
    return kept.read_text().strip()


def plan_from_environment() -> FleetPlan:
    run_dir = repo_root() / ".run"
    gateways = int(os.environ.get("GATEWAY_INSTANCES", "1"))
    env = os.environ
    return FleetPlan(
        run_dir=run_dir,
        jwt_secret=_jwt_secret(run_dir),
        listen_port=int(env.get("FLEET_PORT", "3000")),
        service_ports={
            "auth": (8001,),
            "chat": (8002,),
            "gateway": tuple(8003 + 10 * i for i in range(gateways)),
            "workers": (8004,),
        },
        postgres_url=env.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        rabbitmq_url=env.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        redis_prefix=env.get("REDIS_KEY_PREFIX", ""),
        mongo_url=env.get("MONGODB_URL") or None,
        log_format=env.get("LOG_FORMAT", "console"),
    )


def run_fleet() -> NoReturn:
    plan = plan_from_environment()
    procfile = prepare(plan)
    print(f"[fleet] starting; the API gateway is {plan.public_url} (Ctrl-C stops)", flush=True)
    command = honcho_command(procfile)
    os.execv(command[0], command)  # noqa: S606 - honcho replaces this process and owns the fleet


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Development tooling of the chat fleet.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = cli.add_subparsers(dest="command")
    commands.add_parser(
        "up",
        help="set up what is missing and run the fleet on http://localhost:3000 (the default)",
        description="Set up what is missing and run the fleet; Ctrl-C stops it.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return cli


def main(argv: list[str]) -> int:
    """Parse first (``--help`` and mistakes end here, exit 0 or 2), then run the command."""
    parser().parse_args(argv)
    run_fleet()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
