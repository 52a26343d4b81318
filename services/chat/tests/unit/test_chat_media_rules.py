"""Media uploads on fakes: the size limit, the allowed types judged by content, the per-user
quota (its refusal's problem as clients know it), and what is announced or removed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from chat.media.service import MediaService
from contracts.events import MediaUploaded
from servicekit.problems import problem_for
from servicekit.refusals import Conflict, Forbidden, TooLarge, UnsupportedType
from servicekit.unit_of_work import RecordingUnitOfWork
from services.chat.tests.unit.fake_stores import FakeBlobStore, FakeMediaStore

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 92  # 100 bytes that announce a PNG
MAX_BYTES = 150
QUOTA_BYTES = 250


class Uploads:
    def __init__(self) -> None:
        self.uow = RecordingUnitOfWork()
        self.rows = FakeMediaStore()
        self.blobs = FakeBlobStore()
        self.service = MediaService(
            uow=self.uow,
            store=self.rows,
            blobs=self.blobs,
            max_bytes=MAX_BYTES,
            quota_bytes=QUOTA_BYTES,
        )


@pytest.fixture
def uploads() -> Uploads:
    return Uploads()


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_an_allowed_image_is_kept_pending_and_announced(uploads: Uploads) -> None:
    owner = uuid.uuid4()

    view = await uploads.service.upload(owner, "../holiday.png", chunks(PNG[:5], PNG[5:]))

    assert (view.status, view.content_type, view.size_bytes) == ("pending", "image/png", 100)
    assert view.filename == "holiday.png"
    [event] = uploads.uow.events
    assert isinstance(event, MediaUploaded)
    assert uploads.blobs.blobs[event.storage_key] == PNG


async def test_an_upload_past_the_quota_is_forbidden_and_its_bytes_removed(
    uploads: Uploads,
) -> None:
    owner = uuid.uuid4()
    await uploads.service.upload(owner, "one.png", chunks(PNG))
    await uploads.service.upload(owner, "two.png", chunks(PNG))

    with pytest.raises(Forbidden) as refused:
        await uploads.service.upload(owner, "three.png", chunks(PNG))

    answer = problem_for(refused.value)
    assert (answer.status, answer.title, answer.detail) == (
        403,
        "Quota Exceeded",
        f"Uploads are limited to {QUOTA_BYTES} bytes per user; 200 are in use",
    )
    assert len(uploads.blobs.blobs) == len(uploads.rows.rows) == 2
    assert len(uploads.uow.events) == 2


async def test_bytes_past_the_size_limit_are_too_large(uploads: Uploads) -> None:
    with pytest.raises(TooLarge) as refused:
        await uploads.service.upload(uuid.uuid4(), "big.png", chunks(PNG, PNG))

    answer = problem_for(refused.value)
    assert (answer.status, answer.title) == (413, "Content Too Large")
    assert uploads.blobs.blobs == {}
    assert uploads.uow.commits == 0


async def test_a_file_that_is_no_allowed_image_is_refused_by_its_content(
    uploads: Uploads,
) -> None:
    with pytest.raises(UnsupportedType) as refused:
        await uploads.service.upload(uuid.uuid4(), "fake.png", chunks(b"%PDF-1.7 not an image"))

    answer = problem_for(refused.value)
    assert (answer.status, answer.title) == (415, "Unsupported Media Type")
    assert uploads.blobs.blobs == {}


async def test_pending_media_has_no_content_to_download_yet(uploads: Uploads) -> None:
    owner = uuid.uuid4()
    view = await uploads.service.upload(owner, "p.png", chunks(PNG))

    with pytest.raises(Conflict, match="The media is pending"):
        await uploads.service.content(owner, view.id)
