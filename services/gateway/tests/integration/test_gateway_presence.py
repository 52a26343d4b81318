"""``Presence`` on the real Redis: one online/offline transition per change, however many race.

Expiry is decided by the scores ``Presence`` writes and the time it passes to its scripts,
both from ``time.time()`` in ``gateway.presence``; the tests swap that for a clock they move,
so "60 s later" takes no time. (Redis' own key TTLs still run on real time, far longer.)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from gateway import presence as presence_module
from gateway.presence import TTL_SECONDS, Presence, TooManySockets
from servicekit.presence_keys import Attention, PresenceKeys, PresenceReader

if TYPE_CHECKING:
    from services.gateway.tests.integration.gateway_rig import Store

pytestmark = pytest.mark.integration


class Clock:
    """Stands in for the ``time`` module inside ``gateway.presence``."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(presence_module, "time", fake)
    return fake


@pytest.fixture
def presence(store: Store, clock: Clock) -> Presence:
    return Presence(store.redis, store.keys, max_sockets_per_user=1000)


async def test_connected_is_true_only_for_the_first_socket_of_a_user(presence: Presence) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    assert await presence.connected(alice, "a1") is True
    assert await presence.connected(alice, "a2") is False
    assert await presence.connected(alice, "a3") is False
    assert await presence.connected(bob, "b1") is True  # per user


async def test_disconnected_is_true_only_for_the_last_socket(presence: Presence) -> None:
    alice = uuid.uuid4()
    for sid in ("a1", "a2", "a3"):
        await presence.connected(alice, sid)
    assert await presence.disconnected(alice, "a2") is False
    assert await presence.disconnected(alice, "a1") is False
    assert await presence.disconnected(alice, "a3") is True
    assert await presence.disconnected(alice, "a3") is False  # a repeat is no new transition
    assert await presence.connected(alice, "a4") is True  # and coming back is one again


async def test_concurrent_connects_and_disconnects_of_one_user_give_one_transition_each(
    presence: Presence,
) -> None:
    alice = uuid.uuid4()
    sids = [f"s{i}" for i in range(40)]
    came = await asyncio.gather(*(presence.connected(alice, sid) for sid in sids))
    assert came.count(True) == 1

    went = await asyncio.gather(*(presence.disconnected(alice, sid) for sid in sids))
    assert went.count(True) == 1
    assert (await presence.online([alice]))[alice] is not None


async def test_renewed_sockets_stay_online_past_the_ttl_and_are_not_swept(
    presence: Presence, clock: Clock
) -> None:
    alice = uuid.uuid4()
    await presence.connected(alice, "a1")
    await presence.connected(alice, "a2")
    for _ in range(5):  # five TTLs in all, renewed at two thirds of each
        clock.advance(TTL_SECONDS * 2 / 3)
        await presence.renew([(alice, "a1"), (alice, "a2")])
        assert await presence.sweep() == []
    clock.advance(TTL_SECONDS * 2 / 3)
    assert await presence.sweep() == []
    assert (await presence.online([alice]))[alice] is None
    # Still the same online period: another socket is no new transition.
    assert await presence.connected(alice, "a3") is False


async def test_a_user_whose_sockets_are_not_renewed_is_swept_exactly_once(
    presence: Presence, clock: Clock
) -> None:
    kept, lost = uuid.uuid4(), uuid.uuid4()
    await presence.connected(kept, "k1")
    await presence.connected(lost, "l1")
    await presence.connected(lost, "l2")

    clock.advance(TTL_SECONDS / 2)
    await presence.renew([(kept, "k1")])
    assert await presence.sweep() == []  # nothing expired yet

    clock.advance(TTL_SECONDS / 2 + 1)  # past the lost sockets' expiry, not the renewed one's
    first, second = await asyncio.gather(presence.sweep(), presence.sweep())
    assert sorted([*first, *second]) == [lost]
    assert await presence.sweep() == []

    states = await presence.online([kept, lost])
    assert states[kept] is None
    assert states[lost] == pytest.approx(clock.now)
    # Their sockets are gone: a late disconnect is no second offline, a connect is online again.
    assert await presence.disconnected(lost, "l1") is False
    assert await presence.connected(lost, "l3") is True


async def test_a_connect_after_the_users_sockets_expired_is_online_again_and_not_swept(
    presence: Presence, clock: Clock
) -> None:
    alice = uuid.uuid4()
    await presence.connected(alice, "crashed-instance")
    clock.advance(TTL_SECONDS + 1)  # expired, but no sweep has run yet
    assert await presence.connected(alice, "new") is True
    assert await presence.sweep() == []
    assert (await presence.online([alice]))[alice] is None


async def test_a_renew_racing_the_last_disconnect_brings_no_second_offline(
    presence: Presence, clock: Clock
) -> None:
    """The heartbeat lists this instance's sockets, then renews them: a socket that
    disconnected in between must not put its user back in the online index, or the sweep
    would announce them offline a second time a TTL later."""
    alice = uuid.uuid4()
    await presence.connected(alice, "a1")
    listed = [(alice, "a1")]  # the heartbeat's snapshot
    assert await presence.disconnected(alice, "a1") is True
    await presence.renew(listed)

    clock.advance(TTL_SECONDS + 1)
    assert await presence.sweep() == []
    assert (await presence.online([alice]))[alice] is not None


async def test_a_renew_after_the_user_was_swept_brings_no_second_offline(
    presence: Presence, clock: Clock
) -> None:
    """An instance that stalled past the TTL was swept (its users announced offline); its
    next heartbeat must not make those users sweepable, and so announced, again."""
    alice = uuid.uuid4()
    await presence.connected(alice, "a1")
    clock.advance(TTL_SECONDS + 1)
    assert await presence.sweep() == [alice]

    await presence.renew([(alice, "a1")])
    clock.advance(TTL_SECONDS + 1)
    assert await presence.sweep() == []


async def test_online_reports_online_last_seen_or_never_seen(
    presence: Presence, clock: Clock
) -> None:
    online, left, stranger = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await presence.connected(online, "o1")
    await presence.connected(left, "l1")
    clock.advance(5)
    left_at = clock.now
    await presence.disconnected(left, "l1")
    clock.advance(5)

    states = await presence.online([online, left, stranger])
    assert states == {online: None, left: pytest.approx(left_at), stranger: 0.0}
    assert await presence.online([]) == {}


async def test_the_conversation_a_socket_has_open_is_what_readers_see(
    presence: Presence, store: Store
) -> None:
    reader = PresenceReader(store.redis, store.keys)
    alice, bob, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    here, there = uuid.uuid4(), uuid.uuid4()
    await presence.connected(alice, "a1")
    await presence.connected(alice, "a2")
    await presence.connected(bob, "b1")
    await presence.viewing(alice, "a2", here)
    await presence.viewing(bob, "b1", there)

    assert await reader.attention([alice, bob, carol], here) == {
        alice: Attention.VIEWING,
        bob: Attention.ELSEWHERE,
        carol: Attention.OFFLINE,
    }
    # Leaving another conversation than the open one changes nothing; leaving it does.
    await presence.stopped_viewing(alice, "a2", there)
    assert (await reader.attention([alice], here))[alice] == Attention.VIEWING
    await presence.stopped_viewing(alice, "a2", here)
    assert (await reader.attention([alice], here))[alice] == Attention.ELSEWHERE
    # A disconnect forgets what the socket had open.
    await presence.viewing(alice, "a1", here)
    await presence.disconnected(alice, "a1")
    assert (await reader.attention([alice], here))[alice] == Attention.ELSEWHERE
    assert await store.redis.hgetall(PresenceKeys(store.keys).viewing(alice)) == {}


async def test_a_swept_user_is_offline_to_readers_with_nothing_left_open(
    presence: Presence, store: Store, clock: Clock
) -> None:
    reader = PresenceReader(store.redis, store.keys)
    lost, conversation = uuid.uuid4(), uuid.uuid4()
    await presence.connected(lost, "l1")
    await presence.viewing(lost, "l1", conversation)
    clock.advance(TTL_SECONDS + 1)
    assert await presence.sweep() == [lost]
    assert await reader.attention([lost], conversation) == {lost: Attention.OFFLINE}
    assert await store.redis.exists(PresenceKeys(store.keys).viewing(lost)) == 0


async def test_a_user_holds_at_most_the_allowed_sockets_and_a_freed_one_can_be_taken(
    store: Store,
) -> None:
    presence = Presence(store.redis, store.keys, max_sockets_per_user=2)
    alice = uuid.uuid4()
    assert await presence.connected(alice, "a1") is True
    assert await presence.connected(alice, "a2") is False
    with pytest.raises(TooManySockets):
        await presence.connected(alice, "a3")
    assert await presence.online([alice]) == {alice: None}  # the refusal changed nothing
    await presence.disconnected(alice, "a1")
    assert await presence.connected(alice, "a3") is False
