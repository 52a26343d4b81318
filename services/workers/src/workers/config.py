"""Workers settings, read once from the environment."""

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

SERVICE = "workers"
DEFAULT_PORT = 8004


@dataclass(frozen=True, slots=True)
class MediaSettings:
    root: Path
    """The blob store's directory, shared with chat (``MEDIA_ROOT``)."""
    max_pixels: int
    thumbnail_size: int
    concurrency: int
    decode_budget_bytes: int
    """Bytes of decoded images held at once (each image's estimated peak)."""


@dataclass(frozen=True, slots=True)
class WorkersSettings(ExtendsServiceSettings):
    service: ServiceSettings
    media: MediaSettings
    notification_push_interval: float
    """Seconds between two ``notification.created`` of one notification (0: every change)."""


def load_settings(environ: Mapping[str, str] | None = None) -> WorkersSettings:
    env = Environment(environ)
    return WorkersSettings(
        service=read_service_settings(env, SERVICE, DEFAULT_PORT, postgres=False, mongo=True),
        media=MediaSettings(
            root=Path(env.text("MEDIA_ROOT", "./.run/media")),
            max_pixels=env.integer("MEDIA_MAX_PIXELS", 40_000_000, minimum=1),
            thumbnail_size=env.integer("MEDIA_THUMBNAIL_SIZE", 320, minimum=16, maximum=4096),
            concurrency=env.integer("MEDIA_CONCURRENCY", 2, minimum=1, maximum=64),
            decode_budget_bytes=env.integer(
                "MEDIA_DECODE_BUDGET_BYTES", 512 * 1024 * 1024, minimum=1024 * 1024
            ),
        ),
        notification_push_interval=env.number("NOTIFICATION_PUSH_INTERVAL", 2.0),
    )
