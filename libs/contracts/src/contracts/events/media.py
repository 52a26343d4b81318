"""Events about uploaded media: chat announces an upload, the workers report the outcome."""

from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta

from contracts import names
from contracts.wire import Event, UtcDatetime

ContentType = Annotated[
    str, Meta(max_length=255, pattern=r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$")
]
StorageKey = Annotated[str, Meta(min_length=1, max_length=1024)]
Pixels = Annotated[int, Meta(ge=1)]
MediaStatus = Literal["ready", "rejected"]


class MediaUploaded(Event, frozen=True, kw_only=True):
    """An upload was stored and waits for processing."""

    event_type = names.MEDIA_UPLOADED

    media_id: UUID
    owner_id: UUID
    content_type: ContentType
    size_bytes: Annotated[int, Meta(ge=1)]
    storage_key: StorageKey
    uploaded_at: UtcDatetime


class MediaProcessed(Event, frozen=True, kw_only=True):
    """Processing finished: `ready` with the detected metadata, or `rejected` with a reason."""

    event_type = names.MEDIA_PROCESSED

    media_id: UUID
    owner_id: UUID
    status: MediaStatus
    reason: Annotated[str, Meta(max_length=500)] | None = None
    content_type: ContentType | None = None
    width: Pixels | None = None
    height: Pixels | None = None
    thumbnail_key: StorageKey | None = None
    processed_at: UtcDatetime
