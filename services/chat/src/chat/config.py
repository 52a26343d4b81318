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

SERVICE = "chat"
DEFAULT_PORT = 8002
DEFAULT_MEDIA_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChatSettings(ExtendsServiceSettings):
    service: ServiceSettings
    inline_body_bytes: int
    media_root: Path
    media_max_bytes: int


def load_settings(environ: Mapping[str, str] | None = None) -> ChatSettings:
    env = Environment(environ)
    return ChatSettings(
        service=read_service_settings(env, SERVICE, DEFAULT_PORT, postgres=True, mongo=True),
        inline_body_bytes=env.integer("MESSAGE_INLINE_BYTES", 2048, minimum=64),
        media_root=Path(env.text("MEDIA_ROOT", "./.run/media")),
        media_max_bytes=env.integer("MEDIA_MAX_BYTES", DEFAULT_MEDIA_MAX_BYTES, minimum=1024),
    )
