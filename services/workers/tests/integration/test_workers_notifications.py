"""Notifications on the real servers: who gets one, coalescing, repeats, and the HTTP API.

The workers app runs in-process on a RabbitMQ vhost of its own, the session's Redis prefix and
the MongoDB stand-in. Presence is written to Redis in the layout the gateway writes
(``servicekit.presence_keys``): a live socket, and the conversation it has open.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from aio_pika.abc import AbstractQueue
from aiohttp import ClientSession, web
from openapi_spec_validator import validate

from contracts import make_envelope
from contracts.envelope import Envelope, decode_envelope
from contracts.events import (
    MessageDeleted,
    MessageUpdated,
    MessageView,
    NotificationCreated,
    NotificationRequested,
)
from contracts.names import NOTIFICATION_CREATED
from devstack.api_routes import documented_operations, served_operations
from devstack.broker_probe import collect, collect_settled, declare_probe_queue
from devstack.waiting import until_equal
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.messaging import MESSAGING
from servicekit.presence_keys import PresenceKeys, PresenceReader
from servicekit.redis_store import KeySpace
from servicekit.resources import MONGO, REDIS
from servicekit.tokens import TokenIssuer
from workers.announcements import AnnouncementPacer
from workers.config import load_settings
from workers.notification_store import COLLECTION, NotificationStore
from workers.notifications import DELETED_PREVIEW, MessageNotifications
from workers.routes import OPENAPI_PATH

if TYPE_CHECKING:
    from services.workers.tests.integration.workers_rig import StartWorkers

pytestmark = pytest.mark.integration


@dataclass
class Workers:
    app: web.Application
    url: str
    issuer: TokenIssuer
    key_space: KeySpace
    probe: AbstractQueue

    @property
    def keys(self) -> PresenceKeys:
        return PresenceKeys(self.key_space)

    def handler(self) -> MessageNotifications:
        """The consumer's decision alone, announcing every change at once."""
        return MessageNotifications(
            NotificationStore(self.app[MONGO]),
            PresenceReader(self.app[REDIS], self.key_space),
            AnnouncementPacer(self.publisher.publish_envelopes, interval=0.0),
        )

    @property
    def publisher(self) -> ConfirmedPublisher:
        return self.app[MESSAGING].publisher

    def token(self, user_id: uuid.UUID) -> str:
        return self.issuer.issue(user_id, uuid.uuid4()).token

    async def online(self, user_id: uuid.UUID, viewing: uuid.UUID | None = None) -> str:
        """A live socket of ``user_id``, with ``viewing`` open; its sid."""
        sid = uuid.uuid4().hex
        redis = self.app[REDIS]
        await redis.zadd(self.keys.sockets(user_id), {sid: time.time() + 60})
        if viewing is not None:
            await redis.hset(self.keys.viewing(user_id), sid, str(viewing))
        return sid

    async def announcements(self, expected: int) -> list[NotificationCreated]:
        messages = await collect(self.probe, expected)
        messages += await collect_settled(self.probe, quiet=0.3)
        return [decode_envelope(m.body).data for m in messages]

    async def notifications(self, user_id: uuid.UUID, **params: str) -> dict[str, Any]:
        async with (
            ClientSession() as http,
            http.get(
                f"{self.url}/api/notifications",
                params=params,
                headers={"Authorization": f"Bearer {self.token(user_id)}"},
            ) as reply,
        ):
            assert reply.status == 200, await reply.text()
            body: dict[str, Any] = await reply.json()
            return body

    async def mark_read(self, user_id: uuid.UUID, body: object) -> tuple[int, Any]:
        async with (
            ClientSession() as http,
            http.post(
                f"{self.url}/api/notifications/read",
                json=body,
                headers={"Authorization": f"Bearer {self.token(user_id)}"},
            ) as reply,
        ):
            return reply.status, await reply.json(content_type=None)


@pytest.fixture
async def workers(
    workers_env: dict[str, str], start_workers: StartWorkers
) -> AsyncIterator[Workers]:
    # Every change announced at once; pacing has a test of its own.
    workers_env["NOTIFICATION_PUSH_INTERVAL"] = "0"
    settings = load_settings(workers_env)
    started = await start_workers(workers_env)
    probe = await declare_probe_queue(started.app[MESSAGING].connection, NOTIFICATION_CREATED)
    try:
        yield Workers(
            started.app,
            started.url,
            TokenIssuer(settings.platform.jwt),
            KeySpace(settings.platform.redis.key_prefix),
            probe,
        )
    finally:
        await probe.delete(if_unused=False, if_empty=False)


def created(
    conversation: uuid.UUID,
    sender: uuid.UUID,
    recipients: list[uuid.UUID],
    content: str = "hello there",
    *,
    seq: int = 1,
    mentioned: list[uuid.UUID] | None = None,
) -> Envelope[NotificationRequested]:
    """``recipients`` want every message (as a direct conversation's other member does);
    ``mentioned`` were named."""
    view = MessageView(
        id=uuid.uuid4(),
        conversation_id=conversation,
        seq=seq,
        sender_id=sender,
        content=content,
        created_at=datetime.now(UTC),
    )
    event = NotificationRequested(
        message=view, notify_ids=recipients, mentioned_ids=mentioned or []
    )
    return make_envelope(event, producer="chat")


async def test_offline_and_elsewhere_recipients_are_notified_and_a_viewer_is_not(
    workers: Workers,
) -> None:
    conversation, other = uuid.uuid4(), uuid.uuid4()
    sender, offline, elsewhere, viewer = (uuid.uuid4() for _ in range(4))
    await workers.online(sender, viewing=conversation)
    await workers.online(elsewhere, viewing=other)
    await workers.online(viewer, viewing=conversation)

    envelope = created(conversation, sender, [offline, elsewhere, viewer], "see you at 5")
    await workers.publisher.publish_envelopes([envelope])

    announced = await workers.announcements(2)
    assert sorted(str(a.recipient_id) for a in announced) == sorted([str(offline), str(elsewhere)])
    for announcement in announced:
        assert (announcement.kind, announcement.count) == ("message", 1)
        assert announcement.conversation_id == conversation
        assert announcement.message_id == envelope.data.message.id
        assert announcement.preview == "see you at 5"
    [for_offline] = [a for a in announced if a.recipient_id == offline]
    page = await workers.notifications(offline)
    assert [n["id"] for n in page["notifications"]] == [str(for_offline.notification_id)]
    assert page["unreadCount"] == 1
    for nobody in (viewer, sender):
        assert (await workers.notifications(nobody))["notifications"] == []


async def test_a_mention_notifies_even_a_viewer_and_nobody_else_is_notified_of_a_group_message(
    workers: Workers,
) -> None:
    conversation, sender = uuid.uuid4(), uuid.uuid4()
    viewer, named, unnamed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await workers.online(viewer, viewing=conversation)
    envelope = created(conversation, sender, [], "@v @n look", mentioned=[viewer, named])
    await workers.publisher.publish_envelopes([envelope])

    announced = await workers.announcements(2)
    assert {(a.recipient_id, a.kind) for a in announced} == {
        (viewer, "mention"),
        (named, "mention"),
    }
    assert (await workers.notifications(unnamed))["notifications"] == []


async def test_a_request_naming_nobody_leaves_nothing_in_mongodb(
    workers: Workers,
) -> None:
    conversation, sender = uuid.uuid4(), uuid.uuid4()
    quiet = [created(conversation, sender, [], f"q{n}", seq=n) for n in range(1, 6)]
    await workers.publisher.publish_envelopes(quiet)
    # One that does notify, after them: once it is announced, the quiet ones were consumed.
    reader = uuid.uuid4()
    await workers.publisher.publish_envelopes([created(conversation, sender, [reader], seq=6)])
    [announced] = await workers.announcements(1)
    assert announced.recipient_id == reader
    database = workers.app[MONGO]
    assert await database[COLLECTION].count_documents({"conversationId": str(conversation)}) == 1
    # No per-event record either: the store's absorbed event ids make a repeat harmless.
    records = [f"workers.notifications:{envelope.id}" for envelope in quiet]
    assert await database["processed_events"].count_documents({"_id": {"$in": records}}) == 0


async def test_an_edit_or_a_delete_revises_the_preview_of_the_notification_showing_it(
    workers: Workers,
) -> None:
    conversation, sender, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    requested = created(conversation, sender, [reader], "meet at the old place")
    await workers.publisher.publish_envelopes([requested])
    await workers.announcements(1)
    view = requested.data.message
    edited = msgspec.structs.replace(
        view, content="meet at the new place", edited_at=view.created_at
    )
    await workers.publisher.publish_envelopes(
        [
            make_envelope(
                MessageUpdated(message=edited, recipient_ids=[sender, reader]), producer="chat"
            )
        ]
    )

    async def preview() -> str:
        [shown] = (await workers.notifications(reader))["notifications"]
        return str(shown["preview"])

    await until_equal(preview, "meet at the new place")
    deleted = MessageDeleted(
        conversation_id=conversation,
        message_id=view.id,
        seq=view.seq,
        deleted_by=sender,
        deleted_at=view.created_at,
        recipient_ids=[sender, reader],
    )
    await workers.publisher.publish_envelopes([make_envelope(deleted, producer="chat")])
    await until_equal(preview, DELETED_PREVIEW)


async def test_a_burst_coalesces_into_one_unread_notification_until_it_is_read(
    workers: Workers,
) -> None:
    conversation, sender, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    burst = [created(conversation, sender, [reader], f"m{n}", seq=n) for n in range(1, 4)]
    for envelope in burst:
        await workers.publisher.publish_envelopes([envelope])
        await workers.announcements(1)

    [notification] = (await workers.notifications(reader))["notifications"]
    assert (notification["count"], notification["preview"]) == (3, "m3")
    assert notification["messageId"] == str(burst[-1].data.message.id)
    assert notification["read"] is False

    status, body = await workers.mark_read(reader, {"ids": [notification["id"]]})
    assert (status, body) == (200, {"marked": 1, "unreadCount": 0})
    await workers.publisher.publish_envelopes(
        [created(conversation, sender, [reader], "m4", seq=4)]
    )
    [fresh] = await workers.announcements(1)
    assert fresh.count == 1
    assert str(fresh.notification_id) != notification["id"]
    page = await workers.notifications(reader)
    assert [(n["count"], n["read"]) for n in page["notifications"]] == [(1, False), (3, True)]
    unread = await workers.notifications(reader, unread="true")
    assert [n["id"] for n in unread["notifications"]] == [str(fresh.notification_id)]


async def test_the_same_event_applied_twice_counts_once(workers: Workers) -> None:
    """The runner drops a redelivery it has marked; this is the crash before the mark."""
    handler = workers.handler()
    conversation, sender, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    envelope = created(conversation, sender, [reader])
    await handler(envelope, None)
    await handler(envelope, None)
    await asyncio.gather(handler(envelope, None), handler(envelope, None))

    [notification] = (await workers.notifications(reader))["notifications"]
    assert notification["count"] == 1
    # Announced once: a repeat's read back carries a count this process announced already.
    [announced] = await workers.announcements(1)
    assert (announced.notification_id, announced.count) == (uuid.UUID(notification["id"]), 1)


async def test_concurrent_events_for_one_recipient_open_one_notification_showing_the_newest(
    workers: Workers,
) -> None:
    handler = workers.handler()
    conversation, sender, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    events = [created(conversation, sender, [reader], f"c{n}", seq=n) for n in range(1, 9)]
    # Applied in an order unrelated to seq: the preview is the highest seq's all the same.
    await asyncio.gather(*(handler(event, None) for event in events[::-1]))
    await handler(events[2], None)  # a late repeat of an older message changes nothing
    [notification] = (await workers.notifications(reader))["notifications"]
    assert (notification["count"], notification["preview"]) == (8, "c8")
    assert notification["messageId"] == str(events[-1].data.message.id)


async def test_pages_follow_the_cursor_and_nobody_marks_anothers_notifications(
    workers: Workers,
) -> None:
    sender, reader, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for _ in range(5):
        await workers.publisher.publish_envelopes([created(uuid.uuid4(), sender, [reader, other])])
    await workers.announcements(10)

    first = await workers.notifications(reader, limit="2")
    second = await workers.notifications(reader, limit="2", cursor=first["nextCursor"])
    third = await workers.notifications(reader, limit="2", cursor=second["nextCursor"])
    ids = [n["id"] for page in (first, second, third) for n in page["notifications"]]
    assert len(ids) == len(set(ids)) == 5
    assert third["nextCursor"] is None
    assert first["unreadCount"] == 5

    status, body = await workers.mark_read(other, {"ids": ids})
    assert (status, body) == (200, {"marked": 0, "unreadCount": 5})
    status, body = await workers.mark_read(reader, {"all": True})
    assert (status, body) == (200, {"marked": 5, "unreadCount": 0})


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": [], "all": False},
        {"ids": ["not-a-uuid"]},
        {"all": True, "ids": [str(uuid.uuid4())]},
        {"every": True},
    ],
)
async def test_a_bad_mark_read_body_is_422_and_marks_nothing(
    workers: Workers, body: object
) -> None:
    status, problem = await workers.mark_read(uuid.uuid4(), body)
    assert status == 422
    assert problem["status"] == 422


async def test_the_api_wants_a_token_and_a_cursor_it_handed_out(workers: Workers) -> None:
    async with ClientSession() as http:
        async with http.get(f"{workers.url}/api/notifications") as reply:
            assert reply.status == 401
        async with http.get(
            f"{workers.url}/api/notifications",
            params={"cursor": "bm9wZQ"},
            headers={"Authorization": f"Bearer {workers.token(uuid.uuid4())}"},
        ) as reply:
            assert reply.status == 422
            assert (await reply.json())["errors"][0]["field"] == "cursor"


async def test_the_openapi_document_is_valid_and_covers_every_notifications_route(
    workers: Workers,
) -> None:
    async with ClientSession() as http, http.get(f"{workers.url}{OPENAPI_PATH}") as reply:
        assert reply.status == 200
        document = await reply.json()
    validate(document)
    served = served_operations(workers.app, "/api/notifications", OPENAPI_PATH)
    assert (
        served
        == documented_operations(document)
        == {
            ("get", "/api/notifications"),
            ("post", "/api/notifications/read"),
            ("get", "/api/notifications/push"),
            ("get", "/api/notifications/devices"),
            ("post", "/api/notifications/devices"),
            ("delete", "/api/notifications/devices/{device_id}"),
        }
    )


async def test_a_message_to_a_large_group_notifies_each_member_once_in_recipient_order(
    workers: Workers,
) -> None:
    conversation, sender = uuid.uuid4(), uuid.uuid4()
    members = [uuid.uuid4() for _ in range(60)]
    looking = members[::7]
    for member in looking:
        await workers.online(member, viewing=conversation)
    handler = workers.handler()
    envelope = created(conversation, sender, members, "all hands")
    await handler(envelope, None)
    await handler(envelope, None)  # the crash-before-mark repeat: nothing counts twice

    announced = await workers.announcements(len(members) - len(looking))
    expected = [m for m in members if m not in looking]
    assert [a.recipient_id for a in announced] == expected
    assert {a.count for a in announced} == {1}
    for member in (expected[0], expected[-1]):
        [notification] = (await workers.notifications(member))["notifications"]
        assert notification["count"] == 1


async def test_a_burst_is_announced_at_once_then_once_more_with_the_final_count(
    workers_env: dict[str, str], start_workers: StartWorkers
) -> None:
    workers_env["NOTIFICATION_PUSH_INTERVAL"] = "1.0"
    started = await start_workers(workers_env)
    probe = await declare_probe_queue(started.app[MESSAGING].connection, NOTIFICATION_CREATED)
    try:
        conversation, sender, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        publisher: ConfirmedPublisher = started.app[MESSAGING].publisher
        for n in range(1, 6):
            await publisher.publish_envelopes(
                [created(conversation, sender, [reader], f"b{n}", seq=n)]
            )
        first = await collect(probe, 1, timeout=5)
        last = await collect(probe, 1, timeout=5)
        rest = await collect_settled(probe, quiet=1.5)
    finally:
        await probe.delete(if_unused=False, if_empty=False)
    counts = [decode_envelope(m.body).data.count for m in (*first, *last, *rest)]
    previews = [decode_envelope(m.body).data.preview for m in (*first, *last, *rest)]
    # The first push at once; the messages after it fold into a push at the interval's end
    # that carries the final count: fewer pushes than messages, the last one complete.
    assert counts == sorted(set(counts))
    assert len(counts) <= 3
    assert (counts[-1], previews[-1]) == (5, "b5")
