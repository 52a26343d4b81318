"""``EngagedPresence``: who took part in a conversation learns, at once, the presence of the
members they now share it with, and they learn theirs; nobody else hears anything."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import msgspec

from gateway.audience import PresenceAudience
from gateway.engaged_presence import EngagedPresence
from gateway.memberships import MembershipDirectory
from gateway.presence import Presence
from gateway.room_broadcast import RoomBroadcast
from gateway.rooms import user_room

ALICE, BOB, CAROL = (uuid.UUID(int=n) for n in (1, 2, 3))
CONVERSATION = uuid.uuid4()
SEEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Sent:
    event: str
    data: Any
    rooms: list[str]


@dataclass
class Fakes:
    members: list[uuid.UUID]
    visible: set[uuid.UUID]
    online: dict[uuid.UUID, float | None]
    sent: list[Sent] = field(default_factory=list)

    async def cached_members(self, conversation_id: uuid.UUID) -> list[uuid.UUID]:
        return self.members

    async def visible_to(self, viewer: uuid.UUID, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        return self.visible & set(user_ids)

    async def online_of(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, float | None]:
        return {user_id: self.online[user_id] for user_id in user_ids}

    def send(self, event: str, payload: object, room: list[str], **_: object) -> int:
        self.sent.append(Sent(str(event), msgspec.to_builtins(payload), room))
        return 1


def announcer(fakes: Fakes) -> EngagedPresence:
    presence = type("P", (), {"online": fakes.online_of})()
    return EngagedPresence(
        cast(RoomBroadcast, fakes),
        cast(PresenceAudience, fakes),
        cast(Presence, presence),
        cast(MembershipDirectory, fakes),
    )


async def test_both_sides_learn_each_others_state_once_they_both_took_part() -> None:
    fakes = Fakes(
        members=[ALICE, BOB, CAROL],
        visible={BOB},  # Carol has not taken part: she stays hidden, and sees nothing
        online={ALICE: None, BOB: SEEN.timestamp()},
    )
    await announcer(fakes).announce(CONVERSATION, ALICE)
    assert fakes.sent == [
        Sent(
            "user:offline",
            {"userId": str(BOB), "lastSeenAt": "2026-03-01T12:00:00Z"},
            [user_room(ALICE)],
        ),
        Sent("user:online", {"userId": str(ALICE)}, [user_room(BOB)]),
    ]


async def test_nothing_is_said_to_those_who_cannot_see_each_other() -> None:
    fakes = Fakes(members=[ALICE, BOB], visible=set(), online={ALICE: None, BOB: None})
    await announcer(fakes).announce(CONVERSATION, ALICE)
    assert fakes.sent == []


async def test_someone_never_seen_online_is_not_announced_offline() -> None:
    fakes = Fakes(members=[ALICE, BOB], visible={BOB}, online={ALICE: None, BOB: 0.0})
    await announcer(fakes).announce(CONVERSATION, ALICE)
    assert [s.event for s in fakes.sent] == ["user:online"]
