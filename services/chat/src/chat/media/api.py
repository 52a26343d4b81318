"""The public JSON of the media API, camelCase on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from servicekit.request_body import Body

MediaState = Literal["pending", "ready", "rejected"]


class MediaView(Body):
    id: UUID
    owner_id: UUID
    status: MediaState
    content_type: str
    size_bytes: int
    filename: str | None
    width: int | None
    height: int | None
    has_thumbnail: bool
    reason: str | None
    created_at: datetime
    processed_at: datetime | None


class MediaResponse(Body):
    media: MediaView
