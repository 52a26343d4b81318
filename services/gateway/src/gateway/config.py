"""Gateway settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.settings import Environment, PlatformSettings, read_platform

SERVICE = "gateway"
DEFAULT_PORT = 8003


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    platform: PlatformSettings
    cors_origins: tuple[str, ...] | str
    max_payload_bytes: int
    database_url: None = None  # the gateway owns no Postgres database


def load_settings(environ: Mapping[str, str] | None = None) -> GatewaySettings:
    env = Environment(environ)
    origins = env.csv("SOCKET_IO_CORS", "*")
    return GatewaySettings(
        platform=read_platform(env, SERVICE, DEFAULT_PORT),
        cors_origins="*" if origins == ("*",) else origins,
        max_payload_bytes=env.integer("SOCKET_IO_MAX_PAYLOAD", 64 * 1024, minimum=1024),
    )
