"""Media through the API gateway: an upload is processed by the workers and then served to
the members of a conversation whose message carries it, and to nobody else.

The fleet's chat and workers share one media directory under the fleet's run directory; the
upload crosses nginx's larger body limit on ``POST /api/media`` and the rest of the way is the
production path (outbox, ``media.queue``, the worker, ``media.processed`` back to chat).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from devstack import sample_images
from devstack.waiting import until, until_equal
from e2e.accounts import direct_conversation, register

MIB = 1024 * 1024


def bearer(registered: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {registered['token']}"}


async def upload(
    http: aiohttp.ClientSession, user: dict[str, Any], data: bytes, filename: str
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    async with http.post("/api/media", data=form, headers=bearer(user)) as response:
        return response.status, await response.json(content_type=None)


async def get(
    http: aiohttp.ClientSession, path: str, user: dict[str, Any]
) -> tuple[int, str, bytes]:
    async with http.get(path, headers=bearer(user)) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


async def status_of(http: aiohttp.ClientSession, path: str, user: dict[str, Any]) -> int:
    return (await get(http, path, user))[0]


async def until_settled(
    http: aiohttp.ClientSession, media_id: str, user: dict[str, Any]
) -> dict[str, Any]:

    async def not_pending() -> dict[str, Any] | None:
        async with http.get(f"/api/media/{media_id}", headers=bearer(user)) as response:
            assert response.status == 200
            media: dict[str, Any] = (await response.json())["media"]
        return None if media["status"] == "pending" else media

    return await until(not_pending, timeout=30, interval=0.1, what=f"media {media_id} to settle")


async def test_an_upload_is_processed_and_its_thumbnail_served_to_members_only(
    http: aiohttp.ClientSession,
) -> None:
    alice, bob, carol = await asyncio.gather(register(http), register(http), register(http))
    conversation = await direct_conversation(http, alice, bob)
    # Above the 1 MiB every other route accepts: nginx lets uploads through on their own route.
    image = sample_images.noisy_png(1000, 700)
    assert len(image) > MIB

    status, body = await upload(http, alice, image, "sunset.png")
    assert status == 202, body
    assert body["media"]["status"] == "pending"
    assert (body["media"]["contentType"], body["media"]["sizeBytes"]) == ("image/png", len(image))
    media_id = body["media"]["id"]

    media = await until_settled(http, media_id, alice)
    assert (media["status"], media["width"], media["height"]) == ("ready", 1000, 700)

    async with http.post(
        f"/api/chat/{conversation}/messages",
        json={"content": "the view", "attachments": [media_id]},
        headers=bearer(alice),
    ) as response:
        sent = await response.json()
        assert response.status == 201, sent
    assert sent["message"]["attachments"] == [media_id]

    status, content_type, thumbnail = await get(http, f"/api/media/{media_id}/thumbnail", bob)
    assert (status, content_type) == (200, "image/webp")
    assert sample_images.decoded_size(thumbnail) == (320, 224)
    status, content_type, content = await get(http, f"/api/media/{media_id}/content", bob)
    assert (status, content_type) == (200, "image/png")
    assert sample_images.decoded_size(content) == (1000, 700)

    for path in ("", "/content", "/thumbnail"):
        status, content_type, _ = await get(http, f"/api/media/{media_id}{path}", carol)
        assert (status, content_type) == (404, "application/problem+json"), path


async def test_a_disguised_file_and_an_oversize_one_are_refused(
    http: aiohttp.ClientSession,
) -> None:
    alice = await register(http)

    status, problem = await upload(http, alice, sample_images.EXECUTABLE, "cat.png")
    assert (status, problem["status"]) == (415, 415), problem

    status, problem = await upload(
        http, alice, sample_images.png(8, 8) + b"\x00" * (10 * MIB), "huge.png"
    )
    assert (status, problem["status"]) == (413, 413), problem


async def test_an_image_too_large_to_decode_in_the_workers_memory_budget_is_rejected(
    http: aiohttp.ClientSession,
) -> None:
    alice = await register(http)
    # 1500 x 1500 RGBA worked three times over: about 26 MiB, over the e2e fleet's 16 MiB
    # MEDIA_DECODE_BUDGET_BYTES, though far below MEDIA_MAX_PIXELS and tiny as a file.
    status, body = await upload(
        http, alice, sample_images.png(1500, 1500, (30, 120, 200, 128)), "wide.png"
    )
    assert status == 202, body
    media = await until_settled(http, body["media"]["id"], alice)
    assert media["status"] == "rejected", media
    assert media["reason"].startswith("too large to decode"), media


async def test_uploads_past_a_users_quota_are_refused_and_leave_nothing(
    http: aiohttp.ClientSession,
) -> None:
    alice, bob = await register(http), await register(http)
    image = sample_images.noisy_png(1000, 700)  # about 2 MiB, of the e2e fleet's 3 MiB quota
    status, body = await upload(http, alice, image, "first.png")
    assert status == 202, body
    status, problem = await upload(http, alice, image, "second.png")
    assert (status, problem["title"]) == (403, "Quota Exceeded"), problem
    # Someone else's quota is their own.
    status, body = await upload(http, bob, image, "bobs.png")
    assert status == 202, body


async def test_an_avatar_is_an_image_of_ones_own_that_anyone_signed_in_may_fetch(
    http: aiohttp.ClientSession,
) -> None:
    alice, bob, stranger = await asyncio.gather(register(http), register(http), register(http))
    image = sample_images.noisy_png(400, 400)
    status, body = await upload(http, alice, image, "me.png")
    assert status == 202, body
    media_id = body["media"]["id"]
    profile = "/api/users/me/profile"

    async def choose(user: dict[str, Any], chosen: str) -> tuple[int, Any]:
        async with http.patch(
            profile, json={"avatarMediaId": chosen}, headers=bearer(user)
        ) as response:
            return response.status, await response.json(content_type=None)

    # Not yet processed, someone else's, or unknown: refused, and the profile is unchanged.
    status, problem = await choose(alice, media_id)
    if status == 422:  # the worker had not finished: the reason says so
        assert problem["errors"][0]["message"] == "the image is not processed yet"
    await until_settled(http, media_id, alice)
    for user, chosen in ((bob, media_id), (alice, "00000000-0000-4000-8000-000000000000")):
        status, problem = await choose(user, chosen)
        assert status == 422, problem
        assert problem["errors"][0]["field"] == "avatarMediaId"

    status, body = await choose(alice, media_id)
    assert status == 200, body
    assert body["profile"]["avatarMediaId"] == media_id

    # Anyone signed in sees the profile, and so the avatar and its thumbnail.
    async with http.get(f"/api/users/{alice['user']['id']}", headers=bearer(stranger)) as reply:
        assert (await reply.json())["user"]["profile"]["avatarMediaId"] == media_id
    # Until chat has the avatar event.
    await until_equal(lambda: status_of(http, f"/api/media/{media_id}/thumbnail", stranger), 200)
    status, content_type, content = await get(http, f"/api/media/{media_id}/content", stranger)
    assert (status, content_type) == (200, "image/png")
    assert sample_images.decoded_size(content) == (400, 400)

    # Once it is no longer the avatar, it is Alice's alone again.
    async with http.patch(profile, json={"avatarMediaId": None}, headers=bearer(alice)) as reply:
        assert reply.status == 200
    await until_equal(lambda: status_of(http, f"/api/media/{media_id}", stranger), 404)
