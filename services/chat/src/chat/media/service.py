"""Media use cases: upload, who may see what, the worker's outcome, and attachment rules.

An upload is streamed into the blob store under a fresh key while its size is counted and its
first bytes are sniffed; it becomes visible only once it is complete and allowed. Then the media
row (``pending``) and its ``media.uploaded`` outbox event are written in one transaction. The
worker's ``media.processed`` settles a pending row once; repeats change nothing.

Visibility: the uploader, and every member of a conversation with a (not deleted) message that
carries the media. Everyone else is told it does not exist (404), never that it is forbidden.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chat.media.api import MediaView
from chat.media.domain import MediaRow, ProcessedOutcome
from chat.ports import MediaStore
from contracts.events import MediaProcessed, MediaUploaded
from servicekit.blob_store import BlobNotFoundError, BlobStore
from servicekit.image_types import ALLOWED_IMAGE_TYPES, SNIFF_BYTES, sniff_image_type
from servicekit.logs import get_logger
from servicekit.refusals import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooLarge,
    UnsupportedType,
)
from servicekit.unit_of_work import UnitOfWork

NO_MEDIA = "No such media"
MAX_FILENAME = 255
THUMBNAIL_CONTENT_TYPE = "image/webp"

_log = get_logger("chat.media")


@dataclass(frozen=True, slots=True)
class Download:
    content_type: str
    body: bytes


def storage_key(media_id: uuid.UUID) -> str:
    """Two hex characters of fan-out keep any one directory (or key prefix) small."""
    return f"media/{media_id.hex[:2]}/{media_id}"


def clean_filename(name: str | None) -> str | None:
    """The client's filename for display only: its last path part, printable, bounded."""
    if not name:
        return None
    last = name.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(ch for ch in last if ch.isprintable())[:MAX_FILENAME].strip()
    return printable or None


class MediaService:
    def __init__(
        self,
        *,
        uow: UnitOfWork,
        store: MediaStore,
        blobs: BlobStore,
        max_bytes: int,
        quota_bytes: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._store = store
        self._blobs = blobs
        self._max_bytes = max_bytes
        self._quota_bytes = quota_bytes
        self._clock = clock

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    async def upload(
        self, owner_id: uuid.UUID, filename: str | None, chunks: AsyncIterator[bytes]
    ) -> MediaView:
        """Store the bytes (``TooLarge`` above the limit, ``UnsupportedType`` unless they are an
        allowed image type), then record the pending media and announce it (``Forbidden`` when
        it would take the owner's stored media past their quota; the bytes are removed
        again)."""
        media_id = uuid.uuid4()
        key = storage_key(media_id)
        async with self._blobs.open_writer(key) as writer:
            head = b""
            content_type: str | None = None
            async for chunk in chunks:
                if writer.size + len(chunk) > self._max_bytes:
                    raise TooLarge(
                        f"Media is limited to {self._max_bytes} bytes", title="Content Too Large"
                    )
                if content_type is None:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES:
                        content_type = _allowed_type(head)
                await writer.write(chunk)
            if content_type is None:  # a short file, or an empty one (which is no image)
                content_type = _allowed_type(head)
            size = writer.size
        row = MediaRow(
            id=media_id,
            owner_id=owner_id,
            status="pending",
            content_type=content_type,
            size_bytes=size,
            storage_key=key,
            filename=clean_filename(filename),
            width=None,
            height=None,
            thumbnail_key=None,
            reason=None,
            created_at=self._clock(),
            processed_at=None,
        )
        try:
            async with self._uow.transaction() as work:
                used = await self._store.stored_bytes_of(work.conn, owner_id)
                if used + size > self._quota_bytes:
                    raise Forbidden(
                        f"Uploads are limited to {self._quota_bytes} bytes per user; "
                        f"{used} are in use",
                        title="Quota Exceeded",
                    )
                await self._store.insert_media(work.conn, row)
                work.emit(
                    MediaUploaded(
                        media_id=media_id,
                        owner_id=owner_id,
                        content_type=content_type,
                        size_bytes=size,
                        storage_key=key,
                        uploaded_at=row.created_at,
                    )
                )
        except BaseException:
            # No row names the blob: remove it rather than keep an orphan.
            with contextlib.suppress(Exception):
                await self._blobs.delete(key)
            raise
        return media_view(row)

    async def media(self, user_id: uuid.UUID, media_id: uuid.UUID) -> MediaView:
        return media_view(await self._visible(user_id, media_id))

    async def content(self, user_id: uuid.UUID, media_id: uuid.UUID) -> Download:
        media = await self._visible(user_id, media_id)
        if media.status != "ready":
            raise Conflict(f"The media is {media.status}")
        return Download(media.content_type, await self._read(media.storage_key))

    async def thumbnail(self, user_id: uuid.UUID, media_id: uuid.UUID) -> Download:
        media = await self._visible(user_id, media_id)
        if media.status != "ready" or media.thumbnail_key is None:
            raise Conflict("The media has no thumbnail (yet)")
        return Download(THUMBNAIL_CONTENT_TYPE, await self._read(media.thumbnail_key))

    async def apply_processed(self, conn: Any, event: MediaProcessed) -> None:
        """The worker's outcome, in the inbox's transaction on ``conn``; only pending media
        changes."""
        settled = await self._store.finish_processing(
            conn,
            ProcessedOutcome(
                media_id=event.media_id,
                owner_id=event.owner_id,
                status=event.status,
                content_type=event.content_type,
                width=event.width,
                height=event.height,
                thumbnail_key=event.thumbnail_key,
                reason=event.reason,
                processed_at=event.processed_at,
            ),
        )
        if not settled:
            _log.info("media_processed_ignored", media_id=str(event.media_id), status=event.status)

    async def check_attachments(
        self, conn: Any, sender_id: uuid.UUID, media_ids: list[uuid.UUID]
    ) -> None:
        """Invalid, naming each attachment that is not the sender's own, ready media."""
        found = await self._store.owned_media(conn, sender_id, media_ids)
        errors: list[FieldError] = []
        seen: set[uuid.UUID] = set()
        for index, media_id in enumerate(media_ids):
            field = f"attachments[{index}]"
            media = found.get(media_id)
            if media_id in seen:
                errors.append(FieldError(field, "is listed twice"))
            elif media is None:
                errors.append(FieldError(field, "unknown media"))
            elif media.status != "ready":
                errors.append(FieldError(field, f"media is {media.status}, not ready"))
            seen.add(media_id)
        if errors:
            raise InvalidInput(errors)

    async def _visible(self, user_id: uuid.UUID, media_id: uuid.UUID) -> MediaRow:
        async with self._uow.reading() as work:
            media = await self._store.visible_media(work.conn, media_id, user_id)
        if media is None:
            raise NotFound(NO_MEDIA)
        return media

    async def _read(self, key: str) -> bytes:
        try:
            return await self._blobs.get(key)
        except BlobNotFoundError:
            _log.error("media_blob_missing", key=key)
            raise NotFound(NO_MEDIA) from None


def _allowed_type(head: bytes) -> str:
    """The type the first bytes announce, refused unless it is an allowed image type."""
    content_type = sniff_image_type(head)
    if content_type not in ALLOWED_IMAGE_TYPES:
        raise UnsupportedType(
            "The file is not an image of an allowed type "
            f"({', '.join(sorted(ALLOWED_IMAGE_TYPES))}), judged by its content",
            title="Unsupported Media Type",
        )
    return content_type


def media_view(media: MediaRow) -> MediaView:
    return MediaView(
        id=media.id,
        owner_id=media.owner_id,
        status="ready"
        if media.status == "ready"
        else "rejected"
        if media.status == "rejected"
        else "pending",
        content_type=media.content_type,
        size_bytes=media.size_bytes,
        filename=media.filename,
        width=media.width,
        height=media.height,
        has_thumbnail=media.thumbnail_key is not None,
        reason=media.reason,
        created_at=media.created_at,
        processed_at=media.processed_at,
    )
