"""Chat settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from servicekit.settings import (
    Environment,
    ExtendsServiceSettings,
    ServiceSettings,
    read_service_settings,
)
from servicekit.token_buckets import Bucket

SERVICE = "chat"
DEFAULT_PORT = 8002
DEFAULT_MEDIA_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChatSettings(ExtendsServiceSettings):
    service: ServiceSettings
    inline_body_bytes: int
    media_root: Path
    media_max_bytes: int
    media_quota_bytes: int
    """What one user's stored media may hold together."""
    send_limit: Bucket
    """REST message sends per user (the gateway limits socket sends)."""
    create_limit: Bucket
    """New conversations per user."""
    upload_limit: Bucket
    """Media uploads per user."""
    auth_url: str
    """Auth's REST API: users chat has not heard of yet are asked for there."""


def _per_user(env: Environment, kind: str, default: str) -> Bucket:
    burst, rate = env.burst_and_rate(f"RATE_LIMIT_{kind.upper()}_PER_USER", default)
    return Bucket(f"chat:{kind}:user", burst, rate)


def load_settings(environ: Mapping[str, str] | None = None) -> ChatSettings:
    env = Environment(environ)
    return ChatSettings(
        service=read_service_settings(env, SERVICE, DEFAULT_PORT, postgres=True, mongo=True),
        inline_body_bytes=env.integer("MESSAGE_INLINE_BYTES", 2048, minimum=64),
        media_root=Path(env.text("MEDIA_ROOT", "./.run/media")),
        media_max_bytes=env.integer("MEDIA_MAX_BYTES", DEFAULT_MEDIA_MAX_BYTES, minimum=1024),
        media_quota_bytes=env.integer("MEDIA_QUOTA_BYTES_PER_USER", 1024**3, minimum=1024),
        send_limit=_per_user(env, "rest_send", "20:10"),
        create_limit=_per_user(env, "conversations", "10:0.2"),
        upload_limit=_per_user(env, "uploads", "10:0.5"),
        auth_url=env.url("AUTH_URL", ("http", "https"), "http://127.0.0.1:8001"),
    )
