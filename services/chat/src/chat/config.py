"""Chat settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping

from servicekit.settings import Environment, ServiceSettings, read_service_settings

SERVICE = "chat"
DEFAULT_PORT = 8002


def load_settings(environ: Mapping[str, str] | None = None) -> ServiceSettings:
    return read_service_settings(
        Environment(environ), SERVICE, DEFAULT_PORT, postgres=True, mongo=True
    )
