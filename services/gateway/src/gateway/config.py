"""Gateway settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.settings import (
    Environment,
    ExtendsServiceSettings,
    ServiceSettings,
    SettingsError,
    read_service_settings,
)
from servicekit.token_buckets import Bucket

SERVICE = "gateway"
DEFAULT_PORT = 8003


@dataclass(frozen=True, slots=True)
class GatewaySettings(ExtendsServiceSettings):
    service: ServiceSettings
    cors_origins: tuple[str, ...] | str
    max_payload_bytes: int
    chat_url: str
    chat_max_connections: int
    """Keep-alive connections to chat per process: a burst of connects queues on them."""
    ack_timeout_seconds: float
    membership_cache_seconds: int
    send_limits: tuple[Bucket, Bucket]
    """``message:send`` per socket and per user (all their devices, on any instance)."""
    event_limits: tuple[Bucket, Bucket]
    """Every other client event, per socket and per user."""
    max_sockets_per_user: int
    """Live sockets one user may hold, on every instance together."""


def _buckets(env: Environment, kind: str, socket: str, user: str) -> tuple[Bucket, Bucket]:
    per_socket = env.burst_and_rate(f"RATE_LIMIT_{kind.upper()}_PER_SOCKET", socket)
    per_user = env.burst_and_rate(f"RATE_LIMIT_{kind.upper()}_PER_USER", user)
    return Bucket(f"{kind}:socket", *per_socket), Bucket(f"{kind}:user", *per_user)


def load_settings(environ: Mapping[str, str] | None = None) -> GatewaySettings:
    env = Environment(environ)
    service = read_service_settings(env, SERVICE, DEFAULT_PORT, postgres=False, mongo=False)
    origins = env.csv("SOCKET_IO_CORS", "*")
    if "*" in origins and service.platform.profile != "development":
        # Any origin, with credentials, would let every web page open a user's socket.
        raise SettingsError(
            "SOCKET_IO_CORS must list the allowed origins outside development, not *"
        )
    return GatewaySettings(
        service=service,
        cors_origins="*" if origins == ("*",) else origins,
        max_payload_bytes=env.integer("SOCKET_IO_MAX_PAYLOAD", 64 * 1024, minimum=1024),
        chat_url=env.url("CHAT_URL", ("http", "https"), "http://127.0.0.1:8002"),
        chat_max_connections=env.integer("CHAT_MAX_CONNECTIONS", 8, minimum=1, maximum=1000),
        ack_timeout_seconds=env.number("MESSAGE_ACK_TIMEOUT", 10.0, minimum=0.1),
        membership_cache_seconds=env.integer("MEMBERSHIP_CACHE_SECONDS", 600, minimum=1),
        send_limits=_buckets(env, "send", "10:5", "20:10"),
        event_limits=_buckets(env, "events", "30:10", "60:20"),
        max_sockets_per_user=env.integer("MAX_SOCKETS_PER_USER", 20, minimum=1, maximum=10_000),
    )
