"""Media through chat's API on the real servers, with the real media worker.

Chat stores uploads in the blob store under its ``MEDIA_ROOT`` and announces them; the workers
app runs in-process on chat's vhost with the same ``MEDIA_ROOT`` and answers with
``media.processed``, which chat applies. Access is the uploader's, and then that of members of a
conversation with a message carrying the media; everyone else gets 404.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contracts import make_envelope
from contracts.events import MediaProcessed, MessageSend
from contracts.names import CHAT_EVENTS_QUEUE, MEDIA_UPLOADED
from devstack import sample_images
from devstack.broker_probe import collect
from devstack.http_replies import Reply
from devstack.isolation import IsolatedInfra, free_port
from devstack.waiting import until
from servicekit.blob_store import FilesystemBlobStore
from workers.app import create_app as create_workers_app
from workers.config import load_settings as load_workers_settings

if TYPE_CHECKING:
    from devstack.broker_probe import Probe
    from services.chat.tests.integration.chat_rig import Api, ChatServer, User

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


@pytest.fixture(scope="module")
async def media_worker(
    isolated_infra: IsolatedInfra,
    chat_server: ChatServer,
    broker_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[web.Application]:
    plan = isolated_infra.fleet_plan(Path(tmp_path_factory.mktemp("workers")))
    env = plan.service_env("workers", free_port())
    env.update(
        RABBITMQ_URL=broker_url,
        MEDIA_ROOT=str(chat_server.settings.media_root),
        AMQP_MAX_RETRIES="1",
        AMQP_RETRY_DELAY_MS="50",
    )
    app = create_workers_app(load_workers_settings(env))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield app
    await server.close()


@pytest.fixture
def blobs(chat_server: ChatServer) -> FilesystemBlobStore:
    return FilesystemBlobStore(chat_server.settings.media_root)


async def upload(
    chat_server: ChatServer,
    user: User | None,
    data: bytes,
    filename: str = "photo.png",
    content_type: str = "image/png",
) -> Reply:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type=content_type)
    headers = {} if user is None else {"Authorization": f"Bearer {user.token}"}
    async with chat_server.client.post("/api/media", data=form, headers=headers) as response:
        return Reply(response.status, response.headers, await response.read())


async def uploaded(chat_server: ChatServer, user: User, data: bytes, **kwargs: str) -> str:
    media: dict[str, Any] = (await upload(chat_server, user, data, **kwargs)).ok(202)["media"]
    return str(media["id"])


async def settled(api: Api, user: User, media_id: str, timeout: float = 30) -> dict[str, Any]:
    """The media once the worker's outcome was applied."""

    async def not_pending() -> dict[str, Any] | None:
        reply = await api.call("GET", f"/api/media/{media_id}", user=user)
        media: dict[str, Any] = reply.ok()["media"]
        return None if media["status"] == "pending" else media

    return await until(not_pending, timeout=timeout, what=f"media {media_id} to settle")


async def ready(chat_server: ChatServer, api: Api, user: User, data: bytes) -> str:
    media_id = await uploaded(chat_server, user, data)
    assert (await settled(api, user, media_id))["status"] == "ready"
    return media_id


def stored_files(blobs: FilesystemBlobStore) -> set[Path]:
    return {path for path in blobs.root.rglob("*") if path.is_file()}


async def send_with(api: Api, sender: User, conversation_id: str, attachments: list[str]) -> Reply:
    return await api.call(
        "POST",
        f"/api/chat/{conversation_id}/messages",
        user=sender,
        json={"content": "look", "attachments": attachments},
    )


async def pending_media(chat_server: ChatServer, owner: User) -> str:
    """Media that stays pending: recorded as an upload would be, but never announced."""
    media_id = uuid.uuid4()
    await chat_server.fetchval(
        """
        INSERT INTO media (id, owner_id, status, content_type, size_bytes, storage_key, created_at)
        VALUES ($1, $2, 'pending', 'image/png', 10, $3, now())
        """,
        media_id,
        owner.uuid,
        f"media/{media_id.hex[:2]}/{media_id}",
    )
    return str(media_id)


async def test_an_upload_is_processed_and_served_to_members_only(
    api: Api,
    chat_server: ChatServer,
    media_worker: web.Application,
    probe: Probe,
    blobs: FilesystemBlobStore,
) -> None:
    alice, bob, carol = await chat_server.register(3)
    group = await api.group(alice, bob)
    announced = await probe(MEDIA_UPLOADED)

    # A declared type and filename that lie do not matter: the bytes say PNG.
    reply = await upload(
        chat_server, alice, sample_images.png(640, 480), "holiday.jpg", "image/jpeg"
    )
    media = reply.ok(202)["media"]
    assert media["status"] == "pending"
    assert (media["contentType"], media["sizeBytes"]) == (
        "image/png",
        len(sample_images.png(640, 480)),
    )
    assert (media["ownerId"], media["filename"], media["hasThumbnail"]) == (
        alice.id,
        "holiday.jpg",
        False,
    )
    assert {"id", "createdAt", "width", "height", "reason", "processedAt"} <= media.keys()
    media_id = media["id"]
    [event] = await collect(announced, 1)
    assert event.type == MEDIA_UPLOADED
    assert media_id.encode() in event.body

    done = await settled(api, alice, media_id)
    assert (done["status"], done["width"], done["height"]) == ("ready", 640, 480)
    assert done["hasThumbnail"] is True
    assert done["processedAt"] is not None

    # Before any message carries it, only the uploader sees it.
    own = await api.call("GET", f"/api/media/{media_id}/content", user=alice)
    assert own.status == 200
    assert own.headers["Content-Type"] == "image/png"
    assert own.headers["X-Content-Type-Options"] == "nosniff"
    assert sample_images.decoded_size(own.body) == (640, 480)
    for path in ("", "/content", "/thumbnail"):
        before = await api.call("GET", f"/api/media/{media_id}{path}", user=bob)
        assert before.problem(404)["detail"] == "No such media"

    sent = (await send_with(api, alice, group, [media_id])).ok(201)["message"]
    assert sent["attachments"] == [media_id]
    assert (await api.history(bob, group))[-1]["attachments"] == [media_id]

    assert (await api.call("GET", f"/api/media/{media_id}", user=bob)).ok()["media"] == done
    thumbnail = await api.call("GET", f"/api/media/{media_id}/thumbnail", user=bob)
    assert thumbnail.status == 200
    assert thumbnail.headers["Content-Type"] == "image/webp"
    assert thumbnail.headers["X-Content-Type-Options"] == "nosniff"
    assert sample_images.format_of(thumbnail.body) == "WEBP"
    assert sample_images.decoded_size(thumbnail.body) == (320, 240)
    content = await api.call("GET", f"/api/media/{media_id}/content", user=bob)
    assert content.body == own.body

    for path in ("", "/content", "/thumbnail"):
        stranger = await api.call("GET", f"/api/media/{media_id}{path}", user=carol)
        assert stranger.problem(404)["detail"] == "No such media"
        assert (await api.call("GET", f"/api/media/{media_id}{path}")).problem(401)
    unknown = await api.call("GET", f"/api/media/{uuid.uuid4()}", user=alice)
    assert unknown.problem(404)["detail"] == "No such media"
    assert blobs.incoming_files() == []


async def test_the_stored_image_has_no_gps_location(
    api: Api, chat_server: ChatServer, media_worker: web.Application
) -> None:
    alice = await chat_server.one()
    original = sample_images.jpeg_with_gps()
    assert sample_images.gps_of(original)
    media_id = await uploaded(chat_server, alice, original, filename="me.jpg")
    assert (await settled(api, alice, media_id))["contentType"] == "image/jpeg"

    content = await api.call("GET", f"/api/media/{media_id}/content", user=alice)

    assert content.headers["Content-Type"] == "image/jpeg"
    assert sample_images.gps_of(content.body) == {}
    assert b"TestCam" not in content.body
    assert sample_images.decoded_size(content.body) == (320, 200)


async def test_a_disguised_executable_is_refused_with_415_and_nothing_is_stored(
    chat_server: ChatServer, blobs: FilesystemBlobStore
) -> None:
    alice = await chat_server.one()
    before = stored_files(blobs)

    for data in (sample_images.EXECUTABLE, b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"GIF"):
        reply = await upload(chat_server, alice, data, "cute-cat.png", "image/png")
        assert "judged by its content" in (reply.problem(415)["detail"] or "")

    assert stored_files(blobs) == before
    owned = await chat_server.fetchval("SELECT count(*) FROM media WHERE owner_id = $1", alice.uuid)
    assert owned == 0


async def test_an_oversize_upload_gets_413_and_stores_nothing(
    api: Api, chat_server: ChatServer, media_worker: web.Application, blobs: FilesystemBlobStore
) -> None:
    alice = await chat_server.one()
    limit = chat_server.settings.media_max_bytes
    assert limit == 10 * MIB
    before = stored_files(blobs)
    too_big = sample_images.png(8, 8) + b"\x00" * limit

    # With a Content-Length: refused before the body is read.
    reply = await upload(chat_server, alice, too_big)
    assert reply.problem(413)["title"] == "Content Too Large"

    # Chunked, no length announced: refused once the limit is crossed.
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), MIB):
            yield too_big[start : start + MIB]

    with aiohttp.MultipartWriter("form-data") as writer:
        part = writer.append(chunks(), {"Content-Type": "image/png"})
        part.set_content_disposition("form-data", name="file", filename="big.png")
    headers = {"Authorization": f"Bearer {alice.token}"}
    async with chat_server.client.post("/api/media", data=writer, headers=headers) as response:
        assert response.status == 413
        assert response.headers["Content-Type"].startswith("application/problem+json")

    assert stored_files(blobs) == before
    assert blobs.incoming_files() == []
    owned = await chat_server.fetchval("SELECT count(*) FROM media WHERE owner_id = $1", alice.uuid)
    assert owned == 0

    # Above the 1 MiB JSON body limit, below the media limit: accepted and processed.
    large = sample_images.noisy_png(1200, 1000)
    assert MIB < len(large) < limit
    media_id = await uploaded(chat_server, alice, large)
    done = await settled(api, alice, media_id)
    assert (done["status"], done["width"], done["height"]) == ("ready", 1200, 1000)


async def test_an_upload_must_be_one_multipart_file_part(
    chat_server: ChatServer, blobs: FilesystemBlobStore
) -> None:
    alice = await chat_server.one()
    headers = {"Authorization": f"Bearer {alice.token}"}

    async with chat_server.client.post(
        "/api/media", data=sample_images.png(), headers={**headers, "Content-Type": "image/png"}
    ) as response:
        assert response.status == 415
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("note", "no file here")
    async with chat_server.client.post("/api/media", data=form, headers=headers) as response:
        assert response.status == 422
        assert (await response.json())["errors"][0]["field"] == "file"
    assert (await upload(chat_server, alice, b"")).problem(415)  # an empty file is no image
    assert (await upload(chat_server, None, sample_images.png())).problem(401)

    # A part after the file is refused too, and the file it followed is not kept.
    kept_before = sorted(path for path in blobs.root.rglob("*") if path.is_file())
    form = aiohttp.FormData()
    form.add_field("file", sample_images.png(), filename="a.png", content_type="image/png")
    form.add_field("note", "and this")
    async with chat_server.client.post("/api/media", data=form, headers=headers) as response:
        assert response.status == 422
        assert (await response.json())["errors"][0]["field"] == "file"
    assert sorted(path for path in blobs.root.rglob("*") if path.is_file()) == kept_before


async def test_a_broken_image_ends_rejected_with_a_reason(
    api: Api, chat_server: ChatServer, media_worker: web.Application, blobs: FilesystemBlobStore
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    for data, reason in (
        (sample_images.truncated_png(), "truncated"),
        (sample_images.decompression_bomb_png(), "too many pixels"),
    ):
        media_id = await uploaded(chat_server, alice, data)
        media = await settled(api, alice, media_id)
        assert media["status"] == "rejected"
        assert reason in media["reason"]
        assert (media["width"], media["hasThumbnail"]) == (None, False)
        content = await api.call("GET", f"/api/media/{media_id}/content", user=alice)
        assert content.problem(409)["detail"] == "The media is rejected"
        refused = await send_with(api, alice, direct, [media_id])
        assert refused.problem(422)["errors"] == [
            {"field": "attachments[0]", "message": "media is rejected, not ready"}
        ]
    assert blobs.incoming_files() == []
    # The worker kept going: a good upload after the bad ones is processed.
    assert (await settled(api, alice, await uploaded(chat_server, alice, sample_images.png())))[
        "status"
    ] == "ready"


async def test_attachments_must_be_the_senders_own_ready_media(
    api: Api, chat_server: ChatServer, media_worker: web.Application
) -> None:
    alice, bob = await chat_server.register(2)
    group = await api.group(alice, bob)
    mine = await ready(chat_server, api, alice, sample_images.png(32, 32))
    theirs = await ready(chat_server, api, bob, sample_images.png(16, 16))
    waiting = await pending_media(chat_server, alice)
    unknown = str(uuid.uuid4())

    refused = await send_with(api, alice, group, [mine, theirs, waiting, unknown, mine])

    assert refused.problem(422)["errors"] == [
        {"field": "attachments[1]", "message": "unknown media"},
        {"field": "attachments[2]", "message": "media is pending, not ready"},
        {"field": "attachments[3]", "message": "unknown media"},
        {"field": "attachments[4]", "message": "is listed twice"},
    ]
    assert await api.history(alice, group) == []
    too_many = await send_with(api, alice, group, [str(uuid.uuid4()) for _ in range(11)])
    assert too_many.field_errors() == {"attachments"}

    # The queue path is the same code: a refused command stores nothing, a good one stores it.
    def command(attachments: list[str]) -> Any:
        return make_envelope(
            MessageSend(
                conversation_id=uuid.UUID(group),
                sender_id=alice.uuid,
                content="over the queue",
                client_message_id=uuid.uuid4().hex,
                attachments=[uuid.UUID(i) for i in attachments],
                sent_at=datetime.now(UTC),
            ),
            producer="gateway",
        )

    refused_count = chat_server.consumed("acked")
    await chat_server.publisher.publish_envelopes([command([waiting])])
    await chat_server.consumed_reaches("acked", refused_count + 1)
    await chat_server.publisher.publish_envelopes([command([mine])])
    await chat_server.consumed_reaches("acked", refused_count + 2)
    [stored] = await api.history(bob, group)
    assert (stored["content"], stored["attachments"]) == ("over the queue", [mine])
    thumbnail = await api.call("GET", f"/api/media/{mine}/thumbnail", user=bob)
    assert thumbnail.status == 200


async def test_media_processed_is_applied_once(
    api: Api, chat_server: ChatServer, media_worker: web.Application
) -> None:
    alice = await chat_server.one()
    media_id = await pending_media(chat_server, alice)
    outcome = make_envelope(
        MediaProcessed(
            media_id=uuid.UUID(media_id),
            owner_id=alice.uuid,
            status="ready",
            content_type="image/png",
            width=10,
            height=20,
            thumbnail_key=f"media/{media_id[:2]}/{media_id}.thumb.webp",
            processed_at=datetime.now(UTC),
        ),
        producer="workers",
    )
    # A later, different outcome for media already settled changes nothing either.
    other = make_envelope(
        MediaProcessed(
            media_id=uuid.UUID(media_id),
            owner_id=alice.uuid,
            status="rejected",
            reason="a second opinion",
            processed_at=datetime.now(UTC),
        ),
        producer="workers",
    )

    def processed(event_id: uuid.UUID) -> Awaitable[int]:
        return chat_server.fetchval(
            "SELECT count(*) FROM processed_events WHERE event_id = $1", event_id
        )

    await chat_server.publisher.publish_envelopes([outcome, outcome])
    await until(lambda: processed(outcome.id), timeout=20)
    first = await settled(api, alice, media_id)
    await chat_server.publisher.publish_envelopes([other])
    await until(lambda: processed(other.id), timeout=20)

    again = (await api.call("GET", f"/api/media/{media_id}", user=alice)).ok()["media"]
    assert again == first
    assert (first["status"], first["width"], first["height"]) == ("ready", 10, 20)
    assert first["reason"] is None
    assert (
        chat_server.consumed("duplicate", CHAT_EVENTS_QUEUE) >= 1
    )  # the repeat was dropped by the inbox
