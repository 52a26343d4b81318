"""Chat settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.settings import (
    Environment,
    PlatformSettings,
    ServiceSettings,
    read_service_settings,
)

SERVICE = "chat"
DEFAULT_PORT = 8002


@dataclass(frozen=True, slots=True)
class ChatSettings:
    service: ServiceSettings
    inline_body_bytes: int

    @property
    def platform(self) -> PlatformSettings:
        return self.service.platform

    @property
    def database_url(self) -> str | None:
        return self.service.database_url


def load_settings(environ: Mapping[str, str] | None = None) -> ChatSettings:
    env = Environment(environ)
    return ChatSettings(
        service=read_service_settings(env, SERVICE, DEFAULT_PORT, postgres=True, mongo=True),
        inline_body_bytes=env.integer("MESSAGE_INLINE_BYTES", 2048, minimum=64),
    )
