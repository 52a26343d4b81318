"""``MembershipDirectory`` on the real Redis, with chat's REST side faked (``FakeChat``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import pytest

from devstack.waiting import until_equal
from gateway.chat_client import ChatClient
from gateway.memberships import MembershipDirectory

if TYPE_CHECKING:
    from services.gateway.tests.integration.gateway_rig import FakeChat, Store

pytestmark = pytest.mark.integration

TTL_SECONDS = 600


@dataclass
class Rig:
    chat: FakeChat
    directory: MembershipDirectory
    store: Store

    def key(self, conversation_id: uuid.UUID) -> str:
        return self.store.keys.key("gw", "members", str(conversation_id))

    async def cached(self, conversation_id: uuid.UUID) -> set[str] | None:
        key = self.key(conversation_id)
        if not await self.store.redis.exists(key):
            return None
        members = await self.store.redis.smembers(key)
        return {m.decode() if isinstance(m, bytes) else m for m in members}


@pytest.fixture
def rig(store: Store, fake_chat: FakeChat) -> Rig:
    chat = fake_chat
    directory = MembershipDirectory(store.redis, store.keys, cast(ChatClient, chat), TTL_SECONDS)
    return Rig(chat, directory, store)


def token(user: uuid.UUID) -> str:
    """The stand-in for a user's access token (``FakeChat`` reads the user from it)."""
    return f"token:{user}"


def ids(*users: uuid.UUID) -> set[str]:
    return {str(user) for user in users}


async def test_a_miss_asks_chat_once_with_the_users_token_and_caches_the_member_set(
    rig: Rig,
) -> None:
    conversation, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.chat.members[conversation] = [alice, bob]

    assert await rig.directory.is_member(conversation, alice, token(alice)) is True

    assert rig.chat.asked == [(token(alice), conversation)]
    assert await rig.cached(conversation) == ids(alice, bob)
    ttl = await rig.store.redis.ttl(rig.key(conversation))
    assert TTL_SECONDS - 5 <= ttl <= TTL_SECONDS


async def test_a_second_lookup_is_answered_from_the_cache(rig: Rig) -> None:
    conversation, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.chat.members[conversation] = [alice, bob]
    await rig.directory.is_member(conversation, alice, token(alice))

    assert await rig.directory.is_member(conversation, alice, token(alice)) is True
    assert await rig.directory.is_member(conversation, bob, token(bob)) is True
    assert len(rig.chat.asked) == 1


async def test_a_non_member_gets_false_whether_cached_or_not(rig: Rig) -> None:
    conversation, alice, outsider = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.chat.members[conversation] = [alice]

    # Not cached: chat answers 404 for the outsider (its own authorization), nothing is cached.
    assert await rig.directory.is_member(conversation, outsider, token(outsider)) is False
    assert rig.chat.asked == [(token(outsider), conversation)]
    assert await rig.cached(conversation) is None

    # Cached (by a member's lookup): the outsider is refused without asking chat.
    await rig.directory.is_member(conversation, alice, token(alice))
    assert await rig.directory.is_member(conversation, outsider, token(outsider)) is False
    assert len(rig.chat.asked) == 2


async def test_a_conversation_chat_does_not_know_is_not_cached(rig: Rig) -> None:
    conversation, alice = uuid.uuid4(), uuid.uuid4()
    assert await rig.directory.is_member(conversation, alice, token(alice)) is False
    rig.chat.members[conversation] = [alice]  # e.g. alice was added since
    assert await rig.directory.is_member(conversation, alice, token(alice)) is True
    assert len(rig.chat.asked) == 2


async def test_added_extends_a_cached_set(rig: Rig) -> None:
    conversation, alice, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.chat.members[conversation] = [alice]
    await rig.directory.is_member(conversation, alice, token(alice))

    await rig.directory.added(conversation, carol)

    assert await rig.cached(conversation) == ids(alice, carol)
    assert await rig.directory.is_member(conversation, carol, token(carol)) is True
    assert len(rig.chat.asked) == 1


async def test_added_never_creates_a_set_so_the_next_lookup_fetches_it_whole(rig: Rig) -> None:
    conversation, alice, bob, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.chat.members[conversation] = [alice, bob, carol]

    await rig.directory.added(conversation, carol)
    assert await rig.cached(conversation) is None

    assert await rig.directory.is_member(conversation, alice, token(alice)) is True
    assert rig.chat.asked == [(token(alice), conversation)]
    assert await rig.cached(conversation) == ids(alice, bob, carol)


async def test_an_expired_set_is_refetched_whole_not_rebuilt_from_an_addition(rig: Rig) -> None:
    conversation, alice, bob, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.chat.members[conversation] = [alice, bob]
    await rig.directory.is_member(conversation, alice, token(alice))
    await rig.store.redis.pexpire(rig.key(conversation), 30)
    await until_equal(lambda: rig.cached(conversation), None, timeout=5, interval=0.01)

    rig.chat.members[conversation] = [alice, bob, carol]
    await rig.directory.added(conversation, carol)  # arrives after the expiry
    assert await rig.cached(conversation) is None

    assert await rig.directory.is_member(conversation, bob, token(bob)) is True
    assert await rig.cached(conversation) == ids(alice, bob, carol)
    assert len(rig.chat.asked) == 2


async def test_removed_takes_effect_at_once(rig: Rig) -> None:
    conversation, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.chat.members[conversation] = [alice, bob]
    await rig.directory.is_member(conversation, alice, token(alice))

    await rig.directory.removed(conversation, bob)

    assert await rig.directory.is_member(conversation, bob, token(bob)) is False
    assert await rig.directory.is_member(conversation, alice, token(alice)) is True
    assert len(rig.chat.asked) == 1
    await rig.directory.removed(uuid.uuid4(), bob)  # an uncached conversation: harmless


async def test_remember_replaces_the_cached_set(rig: Rig) -> None:
    conversation, alice, bob, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await rig.directory.remember(conversation, [alice, bob])
    await rig.directory.remember(conversation, [alice, carol])

    assert await rig.cached(conversation) == ids(alice, carol)
    assert await rig.directory.is_member(conversation, bob, token(bob)) is False
    assert rig.chat.asked == []
