"""Chat settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.settings import (
    Environment,
    ExtendsServiceSettings,
    ServiceSettings,
    read_service_settings,
)

SERVICE = "chat"
DEFAULT_PORT = 8002


@dataclass(frozen=True, slots=True)
class ChatSettings(ExtendsServiceSettings):
    service: ServiceSettings
    inline_body_bytes: int


def load_settings(environ: Mapping[str, str] | None = None) -> ChatSettings:
    env = Environment(environ)
    return ChatSettings(
        service=read_service_settings(env, SERVICE, DEFAULT_PORT, postgres=True, mongo=True),
        inline_body_bytes=env.integer("MESSAGE_INLINE_BYTES", 2048, minimum=64),
    )
