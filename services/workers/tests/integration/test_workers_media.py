"""The media worker on the real servers: ``media.uploaded`` in, one ``media.processed`` out.

The workers app runs in-process on a RabbitMQ vhost of its own, with the MongoDB stand-in (its
inbox) and a media directory of the test's own. Uploads are put in that directory and announced
the way chat announces them; a probe queue bound to ``media.processed`` sees the outcomes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from aiohttp import web
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient

from contracts import make_envelope
from contracts.envelope import Envelope, decode_envelope
from contracts.events import MediaProcessed, MediaUploaded
from contracts.names import MEDIA_PROCESSED, MEDIA_QUEUE
from devstack import sample_images
from devstack.broker_probe import collect, collect_settled, declare_probe_queue
from devstack.tcp_proxy import TcpProxy
from servicekit.amqp.connection import connect
from servicekit.amqp.consumer import ConsumerRunner
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.amqp.topology import declare_topology, queue_spec
from servicekit.blob_store import FilesystemBlobStore
from servicekit.http_app import METRICS
from servicekit.inbox import MongoInbox
from servicekit.metrics import ServiceMetrics
from workers.app import create_app
from workers.config import WorkersSettings, load_settings
from workers.media import MediaUploads, processed_event_id, thumbnail_key
from workers.media_images import ImageLimits

if TYPE_CHECKING:
    from services.workers.tests.integration.workers_rig import StartWorkers

pytestmark = pytest.mark.integration

AMQP_PORT = 5672


@dataclass
class MediaRig:
    env: dict[str, str]
    settings: WorkersSettings
    broker: AbstractRobustConnection
    publisher: ConfirmedPublisher
    processed: AbstractQueue
    blobs: FilesystemBlobStore

    async def upload(
        self, data: bytes, content_type: str = "image/png", publish: bool = True
    ) -> Envelope[MediaUploaded]:
        """Store ``data`` as chat would and announce it; returns the announcement."""
        media_id = uuid.uuid4()
        key = f"media/{media_id.hex[:2]}/{media_id}"
        await self.blobs.put(key, data)
        envelope = make_envelope(
            MediaUploaded(
                media_id=media_id,
                owner_id=uuid.uuid4(),
                content_type=content_type,
                size_bytes=len(data),
                storage_key=key,
                uploaded_at=datetime.now(UTC),
            ),
            producer="chat",
        )
        if publish:
            await self.publisher.publish_envelopes([envelope])
        return envelope

    async def outcomes(self, count: int) -> list[Envelope[MediaProcessed]]:
        """Exactly ``count`` announcements: waits for them, then for a quiet second."""
        received = await collect(self.processed, count)
        received += await collect_settled(self.processed, quiet=1.0)
        assert len(received) == count, [m.body for m in received]
        return [decode_envelope(message.body) for message in received]

    def thumbnails(self) -> list[Path]:
        return sorted(self.blobs.root.rglob("*.thumb.webp"))


@pytest.fixture
async def rig(workers_env: dict[str, str]) -> AsyncIterator[MediaRig]:
    env = workers_env
    env["MEDIA_MAX_PIXELS"] = "4000000"
    env["AMQP_MAX_RETRIES"] = "1"
    env["AMQP_RETRY_DELAY_MS"] = "50"
    settings = load_settings(env)
    broker = await connect(env["RABBITMQ_URL"], "media-tests")
    channel = await broker.channel()
    await declare_topology(channel)
    await channel.close()
    processed = await declare_probe_queue(broker, MEDIA_PROCESSED)
    publisher = await ConfirmedPublisher.open(broker, app_id="media-tests")
    yield MediaRig(
        env, settings, broker, publisher, processed, FilesystemBlobStore(settings.media.root)
    )
    await publisher.close()
    await broker.close()


@pytest.fixture
async def workers_app(rig: MediaRig, start_workers: StartWorkers) -> web.Application:
    return (await start_workers(rig.env)).app


def consumed(app: web.Application, outcome: str) -> int:
    return app[METRICS].consumed(MEDIA_QUEUE, outcome)


async def test_an_image_becomes_ready_with_its_size_and_a_thumbnail(
    rig: MediaRig, workers_app: web.Application
) -> None:
    uploaded = await rig.upload(sample_images.png(640, 480))

    [outcome] = await rig.outcomes(1)

    assert outcome.id == processed_event_id(uploaded.id)
    assert outcome.trace_id == uploaded.trace_id
    processed = outcome.data
    assert (processed.media_id, processed.owner_id) == (
        uploaded.data.media_id,
        uploaded.data.owner_id,
    )
    assert (processed.status, processed.reason) == ("ready", None)
    assert (processed.content_type, processed.width, processed.height) == ("image/png", 640, 480)
    assert processed.thumbnail_key == thumbnail_key(uploaded.data.storage_key)
    thumbnail = await rig.blobs.get(processed.thumbnail_key)
    assert sample_images.format_of(thumbnail) == "WEBP"
    assert sample_images.decoded_size(thumbnail) == (320, 240)
    stored = await rig.blobs.get(uploaded.data.storage_key)
    assert sample_images.decoded_size(stored) == (640, 480)
    assert rig.blobs.incoming_files() == []


async def test_exif_gps_is_stripped_from_the_stored_image(
    rig: MediaRig, workers_app: web.Application
) -> None:
    original = sample_images.jpeg_with_gps()
    assert sample_images.gps_of(original)  # the sample does carry a location
    uploaded = await rig.upload(original, "image/jpeg")

    [outcome] = await rig.outcomes(1)

    assert outcome.data.status == "ready"
    stored = await rig.blobs.get(uploaded.data.storage_key)
    assert stored != original
    assert sample_images.gps_of(stored) == {}
    assert b"TestCam" not in stored
    assert sample_images.decoded_size(stored) == (320, 200)
    thumbnail = await rig.blobs.get(thumbnail_key(uploaded.data.storage_key))
    assert sample_images.gps_of(thumbnail) == {}


@pytest.mark.parametrize(
    ("data", "declared", "reason"),
    [
        pytest.param(sample_images.truncated_png(), "image/png", "truncated", id="truncated"),
        pytest.param(
            sample_images.garbage_after_signature(),
            "image/png",
            "corrupt",
            id="garbage-after-magic",
        ),
        pytest.param(
            sample_images.decompression_bomb_png(), "image/png", "too many pixels", id="bomb"
        ),
        pytest.param(sample_images.EXECUTABLE, "image/png", "not an image", id="executable"),
        pytest.param(sample_images.png(), "image/jpeg", "not the recorded", id="type-mismatch"),
    ],
)
async def test_a_bad_file_ends_rejected_with_a_reason_and_the_worker_keeps_going(
    rig: MediaRig, workers_app: web.Application, data: bytes, declared: str, reason: str
) -> None:
    bad = await rig.upload(data, declared)
    good = await rig.upload(sample_images.png(64, 64))

    outcomes = {o.data.media_id: o.data for o in await rig.outcomes(2)}

    rejected = outcomes[bad.data.media_id]
    assert rejected.status == "rejected"
    assert rejected.reason
    assert reason in rejected.reason
    assert (rejected.width, rejected.thumbnail_key) == (None, None)
    # A refused upload is not kept, and nothing was made from it.
    assert not await rig.blobs.exists(bad.data.storage_key)
    assert not await rig.blobs.exists(thumbnail_key(bad.data.storage_key))
    assert outcomes[good.data.media_id].status == "ready"
    assert consumed(workers_app, "dead_lettered") == 0
    assert consumed(workers_app, "retried") == 0
    assert rig.blobs.incoming_files() == []


async def test_the_same_upload_delivered_twice_gives_one_thumbnail_and_one_outcome(
    rig: MediaRig, workers_app: web.Application
) -> None:
    uploaded = await rig.upload(sample_images.png(), publish=False)
    await rig.publisher.publish_envelopes([uploaded, uploaded])

    [outcome] = await rig.outcomes(1)

    assert outcome.data.status == "ready"
    assert (consumed(workers_app, "acked"), consumed(workers_app, "duplicate")) == (1, 1)
    assert rig.thumbnails() == [rig.blobs.path_of(thumbnail_key(uploaded.data.storage_key))]


class PausingStore(FilesystemBlobStore):
    """The real store, except that writing ``key`` stops halfway until ``resume`` is set."""

    def __init__(self, root: Path, key: str) -> None:
        super().__init__(root)
        self._key = key
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()

    async def put(self, key: str, data: bytes) -> None:
        if key != self._key:
            await super().put(key, data)
            return
        async with self.open_writer(key) as writer:
            await writer.write(data[: len(data) // 2])
            self.paused.set()
            await self.resume.wait()
            await writer.write(data[len(data) // 2 :])


async def test_a_worker_cut_off_mid_message_is_redelivered_and_finishes_exactly_once(
    rig: MediaRig,
) -> None:
    """Worker A takes the message, writes the thumbnail and is halfway through writing the
    cleaned image when its broker connection is cut. A fresh worker gets the redelivery and
    finishes: one outcome, one thumbnail, complete files, nothing half-written anywhere."""
    uploaded = await rig.upload(sample_images.jpeg_with_gps(), "image/jpeg", publish=False)
    key = uploaded.data.storage_key
    thumb = thumbnail_key(key)
    proxy = await TcpProxy("127.0.0.1", AMQP_PORT).start()
    connection = await connect(proxy.url_for(rig.env["RABBITMQ_URL"], AMQP_PORT), "worker-a")
    publisher = await ConfirmedPublisher.open(connection, app_id="workers")
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(rig.env["MONGODB_URL"])
    database = mongo[rig.env["MONGODB_DATABASE"]]
    store = PausingStore(rig.blobs.root, key)
    limits = ImageLimits(rig.settings.media.max_pixels, rig.settings.media.thumbnail_size)
    worker_a = ConsumerRunner(
        name="workers.media",
        queue=queue_spec(MEDIA_QUEUE),
        handle=MediaUploads(blobs=store, publisher=publisher, limits=limits),
        inbox=MongoInbox(database),
        connection=connection,
        publisher=publisher,
        settings=rig.settings.platform.amqp,
        metrics=ServiceMetrics(),
    )
    await worker_a.start()
    try:
        await rig.publisher.publish_envelopes([uploaded])
        async with asyncio.timeout(20):
            await store.paused.wait()
        assert await rig.blobs.exists(thumb)
        assert len(rig.blobs.incoming_files()) == 1  # the cleaned image, half written
        await proxy.cut()
        await worker_a.stop(timeout=5)
        store.resume.set()
        assert await collect_settled(rig.processed, quiet=0.5) == []
    finally:
        store.resume.set()
        await connection.close()
        await proxy.close()
    # Whatever became of A's write, no key shows half of it.
    assert sample_images.decoded_size(await rig.blobs.get(key)) == (320, 200)

    app = create_app(rig.settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        [outcome] = await rig.outcomes(1)
        assert consumed(app, "acked") == 1
        marks = database[MongoInbox.COLLECTION]
        assert await marks.count_documents({"_id": f"workers.media:{uploaded.id}"}) == 1
    finally:
        await server.close()
        await mongo.close()

    assert outcome.id == processed_event_id(uploaded.id)
    assert outcome.data.status == "ready"
    assert rig.thumbnails() == [rig.blobs.path_of(thumb)]
    stored = await rig.blobs.get(key)
    assert sample_images.decoded_size(stored) == (320, 200)
    assert sample_images.gps_of(stored) == {}
    assert sample_images.decoded_size(await rig.blobs.get(thumb)) == (320, 200)
    assert rig.blobs.incoming_files() == []
