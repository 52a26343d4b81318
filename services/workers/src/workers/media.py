"""The media consumer: what one ``media.uploaded`` means, ending in one ``media.processed``.

It reads the stored upload, has :mod:`workers.media_images` verify and clean it in a thread
(the event loop keeps serving other messages and the broker's heartbeats), writes the thumbnail
and the cleaned image back atomically under keys derived from the upload's key, and announces
the outcome: ``ready`` with what the decoder found, or ``rejected`` with the reason (then the
stored upload is deleted: nothing keeps a disguised file). A store or broker failure raises, and
the runner retries; a bad file is a decision, never a failure.

Exactly once, end to end: the runner's inbox drops a repeat of an envelope already handled; a
repeat after a crash mid-message redoes the work, which writes the same keys (atomic renames,
so one thumbnail, never half a file) and announces the outcome under the same event id
(``processed_event_id``), which chat's inbox drops if the first announcement got through.
The runner's Mongo inbox marks an event after its effect, so two copies of one envelope in
flight at once both pass it; within a process the second waits for the first and stops there.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, Final

from contracts import make_envelope
from contracts.envelope import Envelope
from contracts.events import MediaProcessed, MediaUploaded
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.blob_store import BlobNotFoundError, BlobStore
from servicekit.logs import get_logger
from workers.config import SERVICE
from workers.media_images import (
    CleanImage,
    ImageLimits,
    MediaRejectedError,
    decode_cost,
    inspect_and_clean,
)

PROCESSED_EVENT_NAMESPACE: Final = uuid.UUID("5b0c2a43-0f5e-4d64-9a3e-3f0d6f3c6a10")
THUMBNAIL_SUFFIX: Final = ".thumb.webp"
_REMEMBERED: Final = 10_000

_log = get_logger("workers.media")

Process = Callable[[bytes, str, ImageLimits], CleanImage]


def processed_event_id(uploaded_event_id: uuid.UUID) -> uuid.UUID:
    """The id of the ``media.processed`` that answers one ``media.uploaded`` envelope: the same
    for every redelivery, so consumers' inboxes keep only the first announcement."""
    return uuid.uuid5(PROCESSED_EVENT_NAMESPACE, str(uploaded_event_id))


def thumbnail_key(storage_key: str) -> str:
    return storage_key + THUMBNAIL_SUFFIX


class DecodeBudget:
    """The bytes of decoded images one worker process may hold at once (``decode_cost`` of
    each): a decode waits until its cost fits, and one that could never fit is rejected."""

    def __init__(self, total_bytes: int) -> None:
        self._total = total_bytes
        self._used = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def reserve(self, cost: int) -> AsyncIterator[None]:
        if cost > self._total:
            raise MediaRejectedError(
                f"too large to decode: it needs about {cost // 2**20} MiB of memory, "
                f"the limit is {self._total // 2**20} MiB"
            )
        async with self._changed:
            await self._changed.wait_for(lambda: self._used + cost <= self._total)
            self._used += cost
        try:
            yield
        finally:
            async with self._changed:
                self._used -= cost
                self._changed.notify_all()


class MediaUploads:
    def __init__(
        self,
        *,
        blobs: BlobStore,
        publisher: ConfirmedPublisher,
        limits: ImageLimits,
        concurrency: int = 2,
        decode_budget_bytes: int = 512 * 1024 * 1024,
        process: Process = inspect_and_clean,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._blobs = blobs
        self._publisher = publisher
        self._limits = limits
        # Decoding holds whole images in memory: bound how many at once, whatever the prefetch.
        self._slots = asyncio.Semaphore(concurrency)
        # ...and bound the bytes they hold together, whatever their number.
        self._budget = DecodeBudget(decode_budget_bytes)
        self._process = process
        self._clock = clock
        self._running: dict[uuid.UUID, asyncio.Lock] = {}
        self._finished: OrderedDict[uuid.UUID, None] = OrderedDict()

    async def __call__(self, envelope: Envelope[Any], _: None) -> None:
        uploaded = envelope.data
        if not isinstance(uploaded, MediaUploaded):
            _log.info("media_event_ignored", event_type=envelope.type)
            return
        lock = self._running.setdefault(envelope.id, asyncio.Lock())
        try:
            async with lock:
                if envelope.id in self._finished:
                    return
                await self._process_upload(envelope, uploaded)
                self._finished[envelope.id] = None
                if len(self._finished) > _REMEMBERED:
                    self._finished.popitem(last=False)
        finally:
            if not lock.locked():
                self._running.pop(envelope.id, None)

    async def _process_upload(
        self, envelope: Envelope[MediaUploaded], uploaded: MediaUploaded
    ) -> None:
        outcome = await self._outcome(uploaded)
        announcement = make_envelope(
            outcome,
            producer=SERVICE,
            trace_id=envelope.trace_id,
            event_id=processed_event_id(envelope.id),
        )
        await self._publisher.publish_envelopes([announcement])
        if outcome.status == "rejected":
            await self._blobs.delete(uploaded.storage_key)
        _log.info(
            "media_processed",
            media_id=str(uploaded.media_id),
            status=outcome.status,
            reason=outcome.reason,
        )

    async def _outcome(self, uploaded: MediaUploaded) -> MediaProcessed:
        try:
            data = await self._blobs.get(uploaded.storage_key)
        except BlobNotFoundError:
            return self._rejected(uploaded, "the stored upload is missing")
        try:
            cost = await asyncio.to_thread(decode_cost, data)
            async with self._budget.reserve(cost), self._slots:
                clean = await asyncio.to_thread(
                    self._process, data, uploaded.content_type, self._limits
                )
        except MediaRejectedError as rejection:
            return self._rejected(uploaded, rejection.reason)
        thumbnail = thumbnail_key(uploaded.storage_key)
        await self._blobs.put(thumbnail, clean.thumbnail)
        await self._blobs.put(uploaded.storage_key, clean.body)
        return MediaProcessed(
            media_id=uploaded.media_id,
            owner_id=uploaded.owner_id,
            status="ready",
            content_type=clean.content_type,
            width=clean.width,
            height=clean.height,
            thumbnail_key=thumbnail,
            processed_at=self._clock(),
        )

    def _rejected(self, uploaded: MediaUploaded, reason: str) -> MediaProcessed:
        return MediaProcessed(
            media_id=uploaded.media_id,
            owner_id=uploaded.owner_id,
            status="rejected",
            reason=reason[:500],
            processed_at=self._clock(),
        )
