"""``FanOut``: each bus event becomes the right Socket.IO emit (or room move, or disconnect).

``RecordingServer`` stands in for ``socketio.AsyncServer`` and for ``RoomBroadcast``: it keeps
rooms the way the real manager does (``get_participants`` iterates the live room, so a caller
that disconnected while iterating would fail) and records every emit (with the payload as the
JSON the client would get), room change and disconnect.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec
import pytest
from aio_pika.abc import AbstractIncomingMessage

from contracts import make_envelope
from contracts.envelope import encode_envelope
from contracts.events import (
    ActivityKind,
    ConversationActivity,
    ConversationCreated,
    ConversationEngaged,
    ConversationMemberAdded,
    ConversationMemberRemoved,
    ConversationSnapshot,
    MessageCreated,
    MessageDeleted,
    MessageRead,
    MessageUpdated,
    MessageView,
    PresenceOffline,
    PresenceOnline,
    SessionRevoked,
)
from devstack.stored_messages import stored_message
from gateway.audience import PresenceAudience
from gateway.fanout import FanOut
from gateway.memberships import MembershipDirectory
from gateway.pending_sends import PendingSends
from gateway.recent_events import RecentEvents
from gateway.room_broadcast import RoomBroadcast
from gateway.rooms import conversation_room, session_room, user_room
from gateway.socketio_internals import NAMESPACE
from servicekit.amqp.batched_acks import BatchedAcks

AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
AT_TEXT = "2026-03-01T12:00:00Z"


@dataclass
class Emitted:
    event: str
    data: Any
    room: str | list[str] | None
    skip_sid: str | list[str] | None
    reached: set[str] = field(default_factory=set, compare=False)
    droppable: bool = field(default=False, compare=False)
    """The sockets the emit reached, as the rooms were when it was made."""


class RecordingServer:
    """Enough of ``socketio.AsyncServer`` for ``FanOut`` and ``gateway.rooms``."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[str]] = {}
        self.emitted: list[Emitted] = []
        self.disconnected: list[str] = []
        self.manager = self
        self.fail_emits = False

    def join(self, sid: str, *rooms: str) -> None:
        for room in rooms:
            self.rooms.setdefault(room, set()).add(sid)

    def members(self, room: str) -> set[str]:
        return set(self.rooms.get(room, set()))

    def get_participants(self, namespace: str, room: str) -> Iterator[tuple[str, str]]:
        assert namespace == NAMESPACE
        for sid in self.rooms.get(room, set()):  # live, like python-socketio's manager
            yield sid, f"eio-{sid}"

    def send(
        self,
        event: str,
        payload: object,
        room: str | list[str],
        skip_sid: str | list[str] | None = None,
        *,
        droppable: bool = False,
    ) -> int:
        if self.fail_emits:
            raise ConnectionError("emit failed")
        rooms = [room] if isinstance(room, str) else list(room)
        skipped = {skip_sid} if isinstance(skip_sid, str) else set(skip_sid or [])
        reached = set().union(*(self.members(r) for r in rooms)) - skipped
        data = msgspec.json.decode(msgspec.json.encode(payload))
        self.emitted.append(Emitted(str(event), data, room, skip_sid, reached, droppable))
        return len(reached)

    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        self.join(sid, room)

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        self.rooms.get(room, set()).discard(sid)

    async def disconnect(
        self, sid: str, namespace: str | None = None, ignore_queue: bool = False
    ) -> None:
        self.disconnected.append(sid)
        for members in self.rooms.values():
            members.discard(sid)


@dataclass
class RecordingMemberships:
    calls: list[tuple[str, uuid.UUID, Any]] = field(default_factory=list)

    async def remember(self, conversation_id: uuid.UUID, member_ids: list[uuid.UUID]) -> None:
        self.calls.append(("remember", conversation_id, list(member_ids)))

    async def added(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> None:
        self.calls.append(("added", conversation_id, user_id))

    async def removed(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> None:
        self.calls.append(("removed", conversation_id, user_id))


@dataclass
class RecordingAudience:
    calls: list[tuple[str, uuid.UUID, uuid.UUID]] = field(default_factory=list)

    async def joined(self, user_ids: list[uuid.UUID], conversation_id: uuid.UUID) -> None:
        self.calls.extend(("joined", user_id, conversation_id) for user_id in user_ids)

    async def left(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        self.calls.append(("left", user_id, conversation_id))


CHANNEL = object()


class FakeIncoming:
    """An aio-pika incoming message: a body, a channel and tag, and an ack that is counted."""

    tags = itertools.count(1)

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.channel = CHANNEL
        self.delivery_tag = next(self.tags)
        self.acks = 0

    async def ack(self, multiple: bool = False) -> None:
        self.acks += 1


@dataclass
class Rig:
    sio: RecordingServer
    memberships: RecordingMemberships
    pending: PendingSends
    fanout: FanOut
    audience: RecordingAudience
    acks: BatchedAcks

    async def deliver(self, body: bytes) -> FakeIncoming:
        message = FakeIncoming(body)
        await self.fanout.on_message(cast(AbstractIncomingMessage, message))
        await asyncio.sleep(0)  # the loop turn that decides the batch
        await self.acks.drain()
        return message


@pytest.fixture
def rig() -> Rig:
    sio = RecordingServer()
    memberships = RecordingMemberships()
    pending = PendingSends()
    audience = RecordingAudience()
    acks = BatchedAcks()
    fanout = FanOut(
        sio,
        cast(RoomBroadcast, sio),
        cast(MembershipDirectory, memberships),
        pending,
        cast(PresenceAudience, audience),
        acks=acks,
    )
    return Rig(sio, memberships, pending, fanout, audience, acks)


def message_view(conversation_id: uuid.UUID, sender_id: uuid.UUID, cmid: str) -> MessageView:
    return stored_message(
        sender_id, conversation_id, cmid, seq=7, content="hi there", created_at=AT
    )


async def test_message_created_goes_to_the_conversation_room_and_resolves_the_pending_send(
    rig: Rig,
) -> None:
    conversation, sender = uuid.uuid4(), uuid.uuid4()
    view = message_view(conversation, sender, "c-1")
    waiting = rig.pending.expect(sender, "c-1")

    await rig.fanout.emit(MessageCreated(message=view))

    assert waiting.done()
    assert waiting.result() == view
    [emitted] = rig.sio.emitted
    assert emitted.event == "message:received"
    assert emitted.room == conversation_room(conversation)
    assert emitted.skip_sid is None
    assert emitted.data == {
        "id": str(view.id),
        "conversationId": str(conversation),
        "seq": 7,
        "senderId": str(sender),
        "content": "hi there",
        "clientMessageId": "c-1",
        "attachments": [],
        "createdAt": AT_TEXT,
        "editedAt": None,
        "deletedAt": None,
        "changeSeq": 0,
    }


async def test_message_updated_goes_to_the_room_as_the_current_view(rig: Rig) -> None:
    conversation, sender = uuid.uuid4(), uuid.uuid4()
    view = msgspec.structs.replace(
        message_view(conversation, sender, "c-1"), content="edited", edited_at=AT
    )
    waiting = rig.pending.expect(sender, "c-1")

    await rig.fanout.emit(MessageUpdated(message=view, recipient_ids=[sender]))

    [emitted] = rig.sio.emitted
    assert (emitted.event, emitted.room) == ("message:updated", conversation_room(conversation))
    assert emitted.data["content"] == "edited"
    assert emitted.data["editedAt"] == AT_TEXT
    assert not waiting.done()  # only message.created answers a send


async def test_message_deleted_sends_only_the_client_payload_in_camel_case(rig: Rig) -> None:
    conversation, message_id = uuid.uuid4(), uuid.uuid4()
    await rig.fanout.emit(
        MessageDeleted(
            conversation_id=conversation,
            message_id=message_id,
            seq=3,
            deleted_by=uuid.uuid4(),
            deleted_at=AT,
            recipient_ids=[uuid.uuid4()],
            change_seq=9,
        )
    )
    [emitted] = rig.sio.emitted
    assert (emitted.event, emitted.room) == ("message:deleted", conversation_room(conversation))
    assert emitted.data == {
        "conversationId": str(conversation),
        "messageId": str(message_id),
        "seq": 3,
        "deletedAt": AT_TEXT,
        "changeSeq": 9,
    }


async def test_message_read_is_emitted_as_conversation_read(rig: Rig) -> None:
    conversation, reader = uuid.uuid4(), uuid.uuid4()
    await rig.fanout.emit(
        MessageRead(conversation_id=conversation, user_id=reader, seq=42, read_at=AT, change_seq=6)
    )
    [emitted] = rig.sio.emitted
    assert (emitted.event, emitted.room) == ("conversation:read", conversation_room(conversation))
    assert emitted.data == {
        "conversationId": str(conversation),
        "userId": str(reader),
        "seq": 42,
        "changeSeq": 6,
    }


@pytest.mark.parametrize(
    ("kind", "event"),
    [
        ("typing", "user:typing"),
        ("stopped-typing", "user:stopped-typing"),
        ("joined", "user:joined"),
        ("left", "user:left"),
    ],
)
async def test_conversation_activity_is_its_event_to_the_room_skipping_the_origin_socket(
    rig: Rig, kind: ActivityKind, event: str
) -> None:
    conversation, user = uuid.uuid4(), uuid.uuid4()
    await rig.fanout.emit(
        ConversationActivity(
            conversation_id=conversation, user_id=user, kind=kind, origin_socket="sid-1", at=AT
        )
    )
    assert rig.sio.emitted == [
        Emitted(
            event,
            {"conversationId": str(conversation), "userId": str(user)},
            conversation_room(conversation),
            "sid-1",
        )
    ]


async def test_presence_online_goes_to_every_shared_room_at_once_but_not_the_users_sockets(
    rig: Rig,
) -> None:
    user, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.sio.join("phone", user_room(user), conversation_room(first), conversation_room(second))
    rig.sio.join("laptop", user_room(user), conversation_room(first))
    rig.sio.join("friend", user_room(uuid.uuid4()), conversation_room(first))

    await rig.fanout.emit(PresenceOnline(user_id=user, at=AT, conversation_ids=[first, second]))

    [emitted] = rig.sio.emitted  # one emit for all rooms: a socket in both gets it once
    assert emitted.event == "user:online"
    assert emitted.data == {"userId": str(user)}
    assert emitted.room == [conversation_room(first), conversation_room(second)]
    assert isinstance(emitted.skip_sid, list)
    assert sorted(emitted.skip_sid) == ["laptop", "phone"]
    assert emitted.reached == {"friend"}


async def test_presence_skips_the_sockets_of_users_a_block_stands_between(rig: Rig) -> None:
    user, blocked, friend, room = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.sio.join("phone", user_room(user), conversation_room(room))
    rig.sio.join("blocked-phone", user_room(blocked), conversation_room(room))
    rig.sio.join("friend-phone", user_room(friend), conversation_room(room))

    await rig.fanout.emit(
        PresenceOnline(user_id=user, at=AT, conversation_ids=[room], hidden_from=[blocked])
    )

    [emitted] = rig.sio.emitted
    assert emitted.reached == {"friend-phone"}


async def test_presence_offline_carries_the_last_seen_time(rig: Rig) -> None:
    user, conversation = uuid.uuid4(), uuid.uuid4()
    rig.sio.join("phone", user_room(user))

    await rig.fanout.emit(
        PresenceOffline(user_id=user, last_seen_at=AT, conversation_ids=[conversation])
    )

    [emitted] = rig.sio.emitted
    assert emitted.event == "user:offline"
    assert emitted.data == {"userId": str(user), "lastSeenAt": AT_TEXT}
    assert emitted.room == [conversation_room(conversation)]
    assert emitted.skip_sid == ["phone"]


async def test_presence_of_a_user_without_conversations_emits_nothing(rig: Rig) -> None:
    user = uuid.uuid4()
    rig.sio.join("phone", user_room(user))
    await rig.fanout.emit(PresenceOnline(user_id=user, at=AT, conversation_ids=[]))
    await rig.fanout.emit(PresenceOffline(user_id=user, last_seen_at=AT, conversation_ids=[]))
    assert rig.sio.emitted == []


async def test_session_revoked_disconnects_every_socket_of_that_session_only(rig: Rig) -> None:
    user, revoked, kept = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for sid in ("a", "b", "c"):
        rig.sio.join(sid, user_room(user), session_room(revoked))
    rig.sio.join("other-device", user_room(user), session_room(kept))

    await rig.fanout.emit(
        SessionRevoked(
            user_id=user,
            session_id=revoked,
            reason="logout",
            revoked_at=AT,
            expires_at=AT + timedelta(minutes=15),
        )
    )

    assert sorted(rig.sio.disconnected) == ["a", "b", "c"]
    assert rig.sio.members(session_room(kept)) == {"other-device"}
    assert rig.sio.emitted == []


async def test_conversation_created_caches_members_and_puts_their_sockets_in_the_room_first(
    rig: Rig,
) -> None:
    conversation, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.sio.join("alice-phone", user_room(alice))
    rig.sio.join("alice-laptop", user_room(alice))
    rig.sio.join("stranger", user_room(uuid.uuid4()))
    room = conversation_room(conversation)

    created = ConversationCreated(
        conversation_id=conversation,
        type="direct",
        created_by=alice,
        participant_ids=[alice, bob],
        created_at=AT,
    )
    await rig.fanout.emit(created)

    assert rig.memberships.calls == [("remember", conversation, [alice, bob])]
    # Only the creator has taken part: bob's presence is not shared until he does.
    assert rig.audience.calls == [("joined", alice, conversation)]
    assert rig.sio.members(room) == {"alice-phone", "alice-laptop"}
    [emitted] = rig.sio.emitted
    assert (emitted.event, emitted.room) == ("conversation:created", room)
    assert emitted.reached == {"alice-phone", "alice-laptop"}  # joined before the emit
    assert emitted.data["conversationId"] == str(conversation)
    assert emitted.data["participantIds"] == [str(alice), str(bob)]


async def test_member_added_and_removed_update_the_directory_and_move_the_users_sockets(
    rig: Rig,
) -> None:
    conversation, carol = uuid.uuid4(), uuid.uuid4()
    room = conversation_room(conversation)
    rig.sio.join("carol-1", user_room(carol))
    rig.sio.join("carol-2", user_room(carol))
    rig.sio.join("dave", user_room(uuid.uuid4()), room)

    await rig.fanout.emit(
        ConversationMemberAdded(
            conversation_id=conversation, user_id=carol, role="member", by=carol, at=AT
        )
    )
    assert rig.sio.members(room) == {"carol-1", "carol-2", "dave"}

    await rig.fanout.emit(
        ConversationMemberRemoved(conversation_id=conversation, user_id=carol, by=carol, at=AT)
    )
    assert rig.sio.members(room) == {"dave"}
    assert rig.memberships.calls == [
        ("added", conversation, carol),
        ("removed", conversation, carol),
    ]
    # Being added is not taking part: carol's audience only loses the conversation.
    assert rig.audience.calls == [("left", carol, conversation)]


async def test_member_events_reach_the_room_and_the_member_and_a_removed_one_hears_it_last(
    rig: Rig,
) -> None:
    conversation, carol, owner = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    room = conversation_room(conversation)
    rig.sio.join("carol", user_room(carol))
    rig.sio.join("dave", user_room(uuid.uuid4()), room)
    snapshot = ConversationSnapshot(
        conversation_id=conversation,
        type="group",
        title="Trip",
        created_by=owner,
        participant_ids=[owner, carol],
        created_at=AT,
    )

    await rig.fanout.emit(
        ConversationMemberAdded(
            conversation_id=conversation,
            user_id=carol,
            role="member",
            by=owner,
            at=AT,
            change_seq=4,
            conversation=snapshot,
        )
    )
    added, created = rig.sio.emitted
    assert added.event == "conversation:member-added"
    assert added.reached == {"carol", "dave"}
    assert added.data["changeSeq"] == 4
    assert (created.event, created.reached) == ("conversation:created", {"carol"})
    assert created.data["participantIds"] == [str(owner), str(carol)]

    rig.sio.emitted.clear()
    await rig.fanout.emit(
        ConversationMemberRemoved(
            conversation_id=conversation, user_id=carol, by=owner, at=AT, change_seq=5
        )
    )
    [removed] = rig.sio.emitted
    assert (removed.event, removed.reached) == ("conversation:member-removed", {"carol", "dave"})
    assert rig.sio.members(room) == {"dave"}  # and nothing more reaches carol from it


async def test_taking_part_adds_to_the_audience_even_of_a_user_with_no_socket_here(
    rig: Rig,
) -> None:
    conversation, offline = uuid.uuid4(), uuid.uuid4()
    await rig.fanout.emit(
        ConversationMemberAdded(
            conversation_id=conversation, user_id=offline, role="member", by=offline, at=AT
        )
    )
    assert rig.audience.calls == []
    await rig.fanout.emit(ConversationEngaged(conversation_id=conversation, user_id=offline, at=AT))
    assert rig.audience.calls == [("joined", offline, conversation)]


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'{"type": "message.created"}',
        b'{"type": "no.such.event", "data": {}}',
        b"",
    ],
    ids=["garbage", "incomplete", "unknown-type", "empty"],
)
async def test_an_undecodable_body_is_acked_and_nothing_is_emitted(rig: Rig, body: bytes) -> None:
    message = await rig.deliver(body)
    assert message.acks == 1
    assert rig.sio.emitted == []
    assert rig.sio.disconnected == []


async def test_a_decoded_event_is_emitted_then_acked(rig: Rig) -> None:
    conversation, sender = uuid.uuid4(), uuid.uuid4()
    view = message_view(conversation, sender, "c-9")
    waiting = rig.pending.expect(sender, "c-9")
    envelope = make_envelope(MessageCreated(message=view), producer="chat")

    message = await rig.deliver(encode_envelope(envelope))

    assert message.acks == 1
    assert [e.event for e in rig.sio.emitted] == ["message:received"]
    assert await asyncio.wait_for(waiting, 1) == view


async def test_an_event_whose_emit_fails_is_still_acked(rig: Rig) -> None:
    rig.sio.fail_emits = True
    event = MessageRead(conversation_id=uuid.uuid4(), user_id=uuid.uuid4(), seq=1, read_at=AT)
    message = await rig.deliver(encode_envelope(make_envelope(event, producer="chat")))
    assert message.acks == 1


async def test_typing_and_presence_are_droppable_under_backpressure_messages_and_joins_are_not(
    rig: Rig,
) -> None:
    conversation, user = uuid.uuid4(), uuid.uuid4()
    view = message_view(conversation, user, "c-2")
    await rig.fanout.emit(MessageCreated(message=view))
    for kind in ("typing", "stopped-typing", "joined", "left"):
        await rig.fanout.emit(
            ConversationActivity(
                conversation_id=conversation, user_id=user, kind=kind, origin_socket="s", at=AT
            )
        )
    await rig.fanout.emit(PresenceOnline(user_id=user, at=AT, conversation_ids=[conversation]))

    assert {e.event: e.droppable for e in rig.sio.emitted} == {
        "message:received": False,
        "user:typing": True,
        "user:stopped-typing": True,
        "user:joined": False,
        "user:left": False,
        "user:online": True,
    }


async def test_an_event_published_twice_reaches_the_room_once(rig: Rig) -> None:
    """The outbox relay publishes again, with the same ids, what it had published when
    Postgres died before it could mark the batch sent."""
    conversation, sender = uuid.uuid4(), uuid.uuid4()
    envelope = make_envelope(
        MessageCreated(message=message_view(conversation, sender, "c-9")), producer="chat"
    )
    body = encode_envelope(envelope)
    first, replay = await rig.deliver(body), await rig.deliver(body)
    assert [e.event for e in rig.sio.emitted] == ["message:received"]
    assert (first.acks, replay.acks) == (1, 1)
    other = make_envelope(
        MessageCreated(message=message_view(conversation, sender, "c-10")), producer="chat"
    )
    await rig.deliver(encode_envelope(other))
    assert len(rig.sio.emitted) == 2


def test_recent_events_forget_the_oldest_past_their_capacity() -> None:
    recent = RecentEvents(capacity=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert [recent.first_time(i) for i in (a, b, a, c)] == [True, True, False, True]
    assert recent.first_time(a) is True  # pushed out by c
    assert recent.first_time(c) is False
