"""Gateway settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.settings import (
    Environment,
    ExtendsServiceSettings,
    ServiceSettings,
    read_service_settings,
)

SERVICE = "gateway"
DEFAULT_PORT = 8003


@dataclass(frozen=True, slots=True)
class GatewaySettings(ExtendsServiceSettings):
    service: ServiceSettings
    cors_origins: tuple[str, ...] | str
    max_payload_bytes: int
    chat_url: str
    ack_timeout_seconds: float
    membership_cache_seconds: int


def load_settings(environ: Mapping[str, str] | None = None) -> GatewaySettings:
    env = Environment(environ)
    origins = env.csv("SOCKET_IO_CORS", "*")
    return GatewaySettings(
        service=read_service_settings(env, SERVICE, DEFAULT_PORT, postgres=False, mongo=False),
        cors_origins="*" if origins == ("*",) else origins,
        max_payload_bytes=env.integer("SOCKET_IO_MAX_PAYLOAD", 64 * 1024, minimum=1024),
        chat_url=env.url("CHAT_URL", ("http", "https"), "http://127.0.0.1:8002"),
        ack_timeout_seconds=env.number("MESSAGE_ACK_TIMEOUT", 10.0, minimum=0.1),
        membership_cache_seconds=env.integer("MEMBERSHIP_CACHE_SECONDS", 600, minimum=1),
    )
