"""The gateway's use cases on fakes of their ports: the rules, without Redis, chat or a broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import pytest

from contracts.chat_api import Change, ChangePage, ConversationIds, MessagePage
from contracts.events import ConversationActivity, MessageSend, MessageView, PresenceOnline
from contracts.sockets import MessageSendPayload, PresenceGetPayload, SyncPayload
from gateway.catch_up import CatchUp, sync_cost
from gateway.connections import Connections
from gateway.conversation_activity import ConversationActivities
from gateway.domain import (
    AlreadySent,
    Cleared,
    ConnectionRefused,
    NotAMember,
    RateLimited,
    Refused,
    SendCheck,
    SocketUser,
)
from gateway.message_sending import MessageSending
from gateway.pending_sends import PendingSends
from gateway.ports import BusEvent
from gateway.presence import TooManySockets
from gateway.presence_lookup import PresenceLookup
from servicekit.amqp.publisher import PublishFailedError
from servicekit.tokens import AccessClaims, InvalidTokenError

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ALICE, BOB, CAROL = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
ROOM = uuid.uuid4()
USER = SocketUser(ALICE, uuid.uuid4(), "alice-token")


def view(conversation_id: uuid.UUID, seq: int, client_message_id: str = "c-1") -> MessageView:
    return MessageView(
        id=uuid.uuid4(),
        conversation_id=conversation_id,
        seq=seq,
        sender_id=ALICE,
        content="hi",
        client_message_id=client_message_id,
        attachments=[],
        created_at=NOW,
        edited_at=None,
        deleted_at=None,
    )


@dataclass
class FakeBus:
    published: list[BusEvent] = field(default_factory=list)
    failing: bool = False

    async def publish(self, event: BusEvent) -> None:
        if self.failing:
            raise PublishFailedError("broker down")
        self.published.append(event)


@dataclass
class FakeRooms:
    entered: list[tuple[str, str]] = field(default_factory=list)

    async def enter(self, sid: str, room: str) -> None:
        self.entered.append((sid, room))


@dataclass
class FakePresence:
    sockets: dict[uuid.UUID, set[str]] = field(default_factory=dict)
    limit: int = 3
    viewing_now: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    last_seen: dict[uuid.UUID, float | None] = field(default_factory=dict)

    async def connected(self, user_id: uuid.UUID, sid: str) -> bool:
        held = self.sockets.setdefault(user_id, set())
        if len(held) >= self.limit:
            raise TooManySockets(self.limit)
        held.add(sid)
        return len(held) == 1

    async def disconnected(self, user_id: uuid.UUID, sid: str) -> bool:
        held = self.sockets.get(user_id, set())
        held.discard(sid)
        return not held

    async def viewing(self, user_id: uuid.UUID, sid: str, conversation_id: uuid.UUID) -> None:
        self.viewing_now.add((sid, conversation_id))

    async def stopped_viewing(
        self, user_id: uuid.UUID, sid: str, conversation_id: uuid.UUID
    ) -> None:
        self.viewing_now.discard((sid, conversation_id))

    async def renew(self, sockets: list[tuple[uuid.UUID, str]]) -> None:
        pass

    async def sweep(self) -> list[uuid.UUID]:
        return []

    async def online(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, float | None]:
        return {user_id: self.last_seen[user_id] for user_id in user_ids}


@dataclass
class FakeAudience:
    engaged: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)
    blocks: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)
    visible: set[uuid.UUID] = field(default_factory=set)

    async def remember(self, user_id: uuid.UUID, conversation_ids: Iterable[uuid.UUID]) -> None:
        self.engaged[user_id] = list(conversation_ids)

    async def remember_blocks(
        self, blocker_id: uuid.UUID, blocked_ids: Iterable[uuid.UUID]
    ) -> None:
        self.blocks[blocker_id] = list(blocked_ids)

    async def conversations(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        return self.engaged.get(user_id, [])

    async def hidden_from(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        return self.blocks.get(user_id, [])

    async def visible_to(self, viewer_id: uuid.UUID, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        return self.visible & set(user_ids)


@dataclass
class FakeTokens:
    async def verify(self, token: str) -> AccessClaims:
        if token != USER.token:
            raise InvalidTokenError("signature")
        return AccessClaims(
            user_id=USER.user_id,
            session_id=USER.session_id,
            token_id=uuid.uuid4(),
            issued_at=NOW,
            expires_at=NOW,
        )


@dataclass
class FakeChat:
    listed: ConversationIds = field(
        default_factory=lambda: ConversationIds(
            conversation_ids=[ROOM], engaged_ids=[ROOM], blocked_ids=[CAROL]
        )
    )
    pages: dict[uuid.UUID, MessagePage] = field(default_factory=dict)
    changes: dict[uuid.UUID, ChangePage] = field(default_factory=dict)
    asked: list[tuple[str, uuid.UUID, int]] = field(default_factory=list)

    async def conversation_ids(self, token: str) -> ConversationIds:
        return self.listed

    async def messages_after(
        self, token: str, conversation_id: uuid.UUID, after: int, limit: int
    ) -> MessagePage | None:
        self.asked.append(("messages", conversation_id, after))
        return self.pages.get(conversation_id)

    async def changes_after(
        self, token: str, conversation_id: uuid.UUID, after: int, limit: int
    ) -> ChangePage | None:
        self.asked.append(("changes", conversation_id, after))
        return self.changes.get(conversation_id)


@dataclass
class FakeMemberships:
    members: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)

    async def is_member(self, conversation_id: uuid.UUID, user_id: uuid.UUID, token: str) -> bool:
        return (conversation_id, user_id) in self.members


@dataclass
class FakeSendChecks:
    outcome: SendCheck = field(default_factory=Cleared)
    remembered: list[tuple[uuid.UUID, str, MessageView]] = field(default_factory=list)

    async def check(
        self,
        *,
        sid: str,
        user_id: uuid.UUID,
        token: str,
        conversation_id: uuid.UUID,
        client_message_id: str,
    ) -> SendCheck:
        return self.outcome

    def remember_sent(
        self, user_id: uuid.UUID, client_message_id: str, message: MessageView
    ) -> None:
        self.remembered.append((user_id, client_message_id, message))


def sending(
    checks: FakeSendChecks, bus: FakeBus, pending: PendingSends, timeout: float = 1.0
) -> MessageSending:
    return MessageSending(
        checks=checks, pending=pending, bus=bus, ack_timeout=timeout, now=lambda: NOW
    )


PAYLOAD = MessageSendPayload(conversation_id=ROOM, content="hi", client_message_id="c-1")


async def test_a_cleared_send_is_published_once_and_answered_with_chats_stored_message() -> None:
    checks, bus, pending = FakeSendChecks(), FakeBus(), PendingSends()
    use_case = sending(checks, bus, pending)
    answering = asyncio.create_task(use_case.send("sid-1", USER, PAYLOAD))
    while not bus.published:
        await asyncio.sleep(0)
    (command,) = bus.published
    assert isinstance(command, MessageSend)
    assert (command.sender_id, command.content, command.socket_id, command.sent_at) == (
        ALICE,
        "hi",
        "sid-1",
        NOW,
    )
    stored = view(ROOM, 7)
    pending.stored(stored)
    sent = await answering
    assert sent.message == stored
    assert checks.remembered == [(ALICE, "c-1", stored)]


@pytest.mark.parametrize(
    ("outcome", "code"),
    [(RateLimited(3), "rate_limited"), (NotAMember(), "not_found")],
)
async def test_a_send_the_checks_refuse_is_refused_and_nothing_is_published(
    outcome: SendCheck, code: str
) -> None:
    bus = FakeBus()
    with pytest.raises(Refused) as refused:
        await sending(FakeSendChecks(outcome), bus, PendingSends()).send("s", USER, PAYLOAD)
    assert refused.value.code == code
    assert bus.published == []


async def test_a_resend_is_answered_with_the_stored_message_or_a_conflict_elsewhere() -> None:
    bus = FakeBus()
    known = view(ROOM, 3)
    sent = await sending(FakeSendChecks(AlreadySent(known)), bus, PendingSends()).send(
        "s", USER, PAYLOAD
    )
    assert sent.message == known
    elsewhere = AlreadySent(view(uuid.uuid4(), 1))
    with pytest.raises(Refused) as refused:
        await sending(FakeSendChecks(elsewhere), bus, PendingSends()).send("s", USER, PAYLOAD)
    assert refused.value.code == "conflict"
    assert bus.published == []


async def test_a_send_the_broker_refuses_is_internal_and_leaves_nothing_pending() -> None:
    pending = PendingSends()
    with pytest.raises(Refused) as refused:
        await sending(FakeSendChecks(), FakeBus(failing=True), pending).send("s", USER, PAYLOAD)
    assert refused.value.code == "internal"
    # Nothing waits for it: a later answer for that id is expected afresh.
    again = pending.expect(ALICE, "c-1")
    assert not again.done()


async def test_an_unconfirmed_send_times_out_and_asks_for_a_resend() -> None:
    use_case = sending(FakeSendChecks(), FakeBus(), PendingSends(), timeout=0.01)
    with pytest.raises(Refused) as refused:
        await use_case.send("s", USER, PAYLOAD)
    assert refused.value.code == "timeout"
    assert "resend" in refused.value.message


async def test_sync_returns_what_was_asked_of_each_conversation_and_names_the_unseen() -> None:
    gone, changed = uuid.uuid4(), uuid.uuid4()
    chat = FakeChat(
        pages={ROOM: MessagePage(messages=[view(ROOM, 5)], has_more=False)},
        changes={
            changed: ChangePage(
                changes=[
                    Change(
                        change_seq=2,
                        event="conversation:updated",
                        data=msgspec.Raw(b'{"title":"x"}'),
                        at=NOW,
                    )
                ],
                last_change_seq=2,
                has_more=False,
            )
        },
    )
    payload = SyncPayload(since={ROOM: 4, gone: 1}, changes_since={changed: 1, gone: 0})
    synced = await CatchUp(chat).sync(USER, payload)
    assert synced.not_found == [gone]
    room = synced.conversations[ROOM]
    assert [m.seq for m in room.messages] == [5]  # type: ignore[union-attr]
    assert room.changes is msgspec.UNSET
    only_changes = synced.conversations[changed]
    assert only_changes.messages is msgspec.UNSET
    assert [(c.change_seq, c.data) for c in only_changes.changes] == [(2, {"title": "x"})]  # type: ignore[union-attr]
    # A conversation found missing is not asked about again.
    assert chat.asked.count(("changes", gone, 0)) == 0
    assert sync_cost(payload) == 1
    assert sync_cost(SyncPayload(since={uuid.uuid4(): 0 for _ in range(25)})) == 3


async def test_presence_is_found_only_for_users_the_asker_may_see() -> None:
    audience = FakeAudience(visible={BOB})
    presence = FakePresence(last_seen={BOB: 1_700_000_000.0})
    found = await PresenceLookup(audience, presence).find(
        USER, PresenceGetPayload(user_ids=[BOB, CAROL, CAROL])
    )
    assert found.not_found == [CAROL]
    assert found.presence[BOB].online is False
    assert found.presence[BOB].last_seen_at == datetime.fromtimestamp(1_700_000_000, UTC)


def connections(
    presence: FakePresence, rooms: FakeRooms, bus: FakeBus
) -> tuple[Connections, FakeAudience]:
    audience = FakeAudience()
    return (
        Connections(
            tokens=FakeTokens(),
            chat=FakeChat(),
            rooms=rooms,
            presence=presence,
            audience=audience,
            bus=bus,
            now=lambda: NOW,
        ),
        audience,
    )


async def test_a_connecting_socket_joins_its_rooms_and_its_user_comes_online_once() -> None:
    presence, rooms, bus = FakePresence(), FakeRooms(), FakeBus()
    use_case, audience = connections(presence, rooms, bus)
    user = await use_case.connect("s1", USER.token)
    assert user == USER
    assert [room for _, room in rooms.entered] == [
        f"user:{ALICE}",
        f"session:{USER.session_id}",
        f"conversation:{ROOM}",
    ]
    assert audience.engaged[ALICE] == [ROOM]
    assert audience.blocks[ALICE] == [CAROL]
    await use_case.connect("s2", USER.token)  # a second device: already online
    assert [type(e) for e in bus.published] == [PresenceOnline]
    online = bus.published[0]
    assert isinstance(online, PresenceOnline)
    assert (online.conversation_ids, online.hidden_from, online.at) == ([ROOM], [CAROL], NOW)

    gone: list[str] = []

    async def typing_ends(user: SocketUser) -> None:
        gone.append("typing")

    await use_case.disconnect("s1", typing_ends)
    assert len(bus.published) == 1  # s2 still connected
    await use_case.disconnect("s2", typing_ends)
    assert gone == ["typing", "typing"]
    assert len(bus.published) == 2
    assert use_case.user_of("s2") is None


async def test_a_connection_is_refused_for_a_bad_token_or_too_many_sockets() -> None:
    use_case, _ = connections(FakePresence(limit=1), FakeRooms(), FakeBus())
    with pytest.raises(ConnectionRefused, match="invalid token"):
        await use_case.connect("s1", "forged")
    await use_case.connect("s1", USER.token)
    with pytest.raises(ConnectionRefused, match="too many connections: at most 1"):
        await use_case.connect("s2", USER.token)


def activities(
    memberships: FakeMemberships, bus: FakeBus, presence: FakePresence, typing: float = 5.0
) -> ConversationActivities:
    return ConversationActivities(
        memberships=memberships,
        bus=bus,
        rooms=FakeRooms(),
        presence=presence,
        typing_seconds=typing,
        now=lambda: NOW,
    )


async def test_activity_in_a_conversation_is_only_for_its_members() -> None:
    bus = FakeBus()
    use_case = activities(FakeMemberships(), bus, FakePresence())
    for act in (use_case.start_typing, use_case.open, use_case.stop_typing):
        with pytest.raises(Refused) as refused:
            await act("s", USER, ROOM)
        assert refused.value.code == "not_found"
    assert bus.published == []


async def test_typing_stops_by_itself_and_when_the_socket_goes() -> None:
    bus, presence = FakeBus(), FakePresence()
    use_case = activities(FakeMemberships({(ROOM, ALICE)}), bus, presence, typing=0.01)
    await use_case.start_typing("s", USER, ROOM)
    await asyncio.sleep(0.05)
    kinds = [e.kind for e in bus.published if isinstance(e, ConversationActivity)]
    assert kinds == ["typing", "stopped-typing"]
    slow_bus = FakeBus()
    slow = activities(FakeMemberships({(ROOM, ALICE)}), slow_bus, presence, typing=60)
    await slow.start_typing("s", USER, ROOM)
    await slow.socket_gone("s", USER)
    await slow.socket_gone("s", USER)  # nothing left to stop
    assert [e.kind for e in slow_bus.published if isinstance(e, ConversationActivity)] == [
        "typing",
        "stopped-typing",
    ]


async def test_opening_a_conversation_marks_it_viewed_and_a_lost_relay_is_internal() -> None:
    bus, presence = FakeBus(), FakePresence()
    use_case = activities(FakeMemberships({(ROOM, ALICE)}), bus, presence)
    await use_case.open("s", USER, ROOM)
    assert ("s", ROOM) in presence.viewing_now
    await use_case.close("s", USER, ROOM)
    assert ("s", ROOM) not in presence.viewing_now
    bus.failing = True
    with pytest.raises(Refused) as refused:
        await use_case.start_typing("s", USER, ROOM)
    assert refused.value.code == "internal"
