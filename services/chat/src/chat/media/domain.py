"""Media as values: an upload as stored, and the worker's outcome for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class MediaRow:
    id: UUID
    owner_id: UUID
    status: str
    content_type: str
    size_bytes: int
    storage_key: str
    filename: str | None
    width: int | None
    height: int | None
    thumbnail_key: str | None
    reason: str | None
    created_at: datetime
    processed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ProcessedOutcome:
    media_id: UUID
    owner_id: UUID
    status: str
    content_type: str | None
    width: int | None
    height: int | None
    thumbnail_key: str | None
    reason: str | None
    processed_at: datetime
