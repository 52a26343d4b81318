"""The checks before a ``message:send`` is published, and its sent record, on the real Redis.

``SendChecks`` itself, with chat's REST side stood in for (``FakeChat``): the refusal order
(rate limited, then not a member, then a known record), a member set not cached, and the
record written in the background. Then through two instances of the real app: a record written
after the ack answers a resend that reaches the other instance.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pytest
import structlog
from aiohttp.test_utils import TestServer

from contracts.names import MESSAGE_SEND
from devstack.broker_probe import collect_settled
from devstack.isolation import REDIS_URL, free_port
from devstack.stored_messages import stored_message
from gateway.app import create_app
from gateway.chat_client import ChatClient
from gateway.config import load_settings
from gateway.domain import (
    AlreadySent,
    Cleared,
    NotAMember,
    RateLimited,
    SendCheck,
)
from gateway.memberships import MembershipDirectory
from gateway.send_checks import SendChecks
from servicekit.redis_store import KeySpace, Redis, create_redis
from servicekit.settings import RedisSettings
from servicekit.token_buckets import Bucket, TokenBuckets
from services.gateway.tests.integration.gateway_rig import connected_socket, next_command

if TYPE_CHECKING:
    from services.gateway.tests.integration.gateway_rig import FakeChat, Gateway, Store

pytestmark = pytest.mark.integration

# Barely refilling: the counts of allowed sends are exact.
PER_SOCKET = Bucket("send:socket", capacity=2, per_second=0.001)
PER_USER = Bucket("send:user", capacity=3, per_second=0.001)


class CommandLog(Redis):
    """A client that notes the name of every command it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]).upper())
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


@dataclass
class Rig:
    redis: CommandLog
    keys: KeySpace
    chat: FakeChat
    buckets: TokenBuckets
    memberships: MembershipDirectory
    checks: SendChecks

    async def check(
        self, user: uuid.UUID, conversation: uuid.UUID, client_message_id: str, sid: str = "s1"
    ) -> SendCheck:
        return await self.checks.check(
            sid=sid,
            user_id=user,
            token=token(user),
            conversation_id=conversation,
            client_message_id=client_message_id,
        )

    async def tokens_left(self, bucket: Bucket, subject: str) -> float | None:
        """None: the bucket is absent (full, never taken from)."""
        [key] = self.buckets.prepare([(bucket, subject)]).keys
        level = await self.redis.hget(key, "tokens")
        return None if level is None else float(level)


@pytest.fixture
async def rig(store: Store, fake_chat: FakeChat) -> AsyncIterator[Rig]:
    redis = CommandLog.from_url(REDIS_URL)
    assert isinstance(redis, CommandLog)
    chat = fake_chat
    buckets = TokenBuckets(redis, store.keys)
    memberships = MembershipDirectory(redis, store.keys, cast(ChatClient, chat), 600)
    checks = SendChecks(redis, store.keys, buckets, memberships, (PER_SOCKET, PER_USER))
    yield Rig(redis, store.keys, chat, buckets, memberships, checks)
    await checks.drain()
    await redis.aclose()


def token(user: uuid.UUID) -> str:
    """The stand-in for a user's access token (``FakeChat`` reads the user from it)."""
    return f"token:{user}"


async def test_a_cached_member_within_both_buckets_is_cleared_in_one_command(rig: Rig) -> None:
    conversation, alice = uuid.uuid4(), uuid.uuid4()
    await rig.memberships.remember(conversation, [alice])
    await rig.check(alice, conversation, "warm-up")  # loads the script if Redis lacks it
    rig.redis.sent.clear()

    assert await rig.check(alice, conversation, "c-1") == Cleared()

    assert rig.redis.sent == ["EVALSHA"]
    assert rig.chat.asked == []
    assert await rig.tokens_left(PER_SOCKET, "s1") == pytest.approx(0, abs=0.01)
    assert await rig.tokens_left(PER_USER, str(alice)) == pytest.approx(1, abs=0.01)


async def test_an_empty_socket_bucket_refuses_and_the_users_bucket_is_not_charged(
    rig: Rig,
) -> None:
    conversation, alice = uuid.uuid4(), uuid.uuid4()
    await rig.memberships.remember(conversation, [alice])
    for n in range(PER_SOCKET.capacity):
        assert await rig.check(alice, conversation, f"c-{n}") == Cleared()
    users_level = await rig.tokens_left(PER_USER, str(alice))

    refused = await rig.check(alice, conversation, "c-late")

    assert isinstance(refused, RateLimited)
    assert refused.retry_after_seconds >= 1
    assert await rig.tokens_left(PER_USER, str(alice)) == pytest.approx(users_level, abs=0.01)
    # Another socket of the same user still has the user's last token.
    assert await rig.check(alice, conversation, "c-other", sid="s2") == Cleared()


async def test_an_empty_users_bucket_refuses_before_membership_or_the_record_is_looked_at(
    rig: Rig,
) -> None:
    conversation, alice = uuid.uuid4(), uuid.uuid4()
    await rig.memberships.remember(conversation, [alice])
    for n in range(PER_USER.capacity):
        assert await rig.check(alice, conversation, f"c-{n}", sid=f"s{n}") == Cleared()
    rig.checks.remember_sent(alice, "c-0", stored_message(alice, conversation, "c-0"))
    await rig.checks.drain()
    uncached = uuid.uuid4()
    rig.chat.members[uncached] = [alice]

    assert isinstance(await rig.check(alice, conversation, "c-0", sid="fresh"), RateLimited)
    assert isinstance(await rig.check(alice, uncached, "c-new", sid="fresh"), RateLimited)

    assert await rig.tokens_left(PER_SOCKET, "fresh") is None  # no token was taken from it
    assert rig.chat.asked == []
    assert not await rig.redis.exists(rig.memberships.cache_key(uncached))


async def test_a_user_the_cached_set_does_not_hold_is_not_found_before_any_record(
    rig: Rig,
) -> None:
    conversation, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await rig.memberships.remember(conversation, [alice, bob])
    rig.checks.remember_sent(bob, "c-1", stored_message(bob, conversation, "c-1"))
    await rig.checks.drain()
    await rig.memberships.removed(conversation, bob)

    assert await rig.check(bob, conversation, "c-1") == NotAMember()
    assert rig.chat.asked == []


async def test_a_member_set_not_cached_is_asked_of_chat_and_cached(rig: Rig) -> None:
    conversation, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.chat.members[conversation] = [alice, bob]

    assert await rig.check(alice, conversation, "c-1") == Cleared()
    assert rig.chat.asked == [(token(alice), conversation)]
    cached = await rig.redis.smembers(rig.memberships.cache_key(conversation))
    assert cached == {str(alice).encode(), str(bob).encode()}

    assert await rig.check(bob, conversation, "c-1", sid="s2") == Cleared()
    assert len(rig.chat.asked) == 1


async def test_a_conversation_chat_does_not_show_the_user_is_not_found_and_not_cached(
    rig: Rig,
) -> None:
    conversation, alice, outsider = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rig.chat.members[conversation] = [alice]

    assert await rig.check(outsider, conversation, "c-1") == NotAMember()
    assert await rig.check(alice, uuid.uuid4(), "c-1", sid="s2") == NotAMember()

    assert len(rig.chat.asked) == 2
    assert not await rig.redis.exists(rig.memberships.cache_key(conversation))


async def test_a_known_sent_record_is_answered_at_once(rig: Rig) -> None:
    conversation, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await rig.memberships.remember(conversation, [alice])
    stored = stored_message(alice, conversation, "c-1")
    rig.checks.remember_sent(alice, "c-1", stored)
    await rig.checks.drain()
    rig.redis.sent.clear()

    assert await rig.check(alice, conversation, "c-1") == AlreadySent(stored)
    assert rig.redis.sent == ["EVALSHA"]

    # Also when the member set is not cached: the record came in the same call as the miss.
    other = uuid.uuid4()
    rig.chat.members[other] = [bob]
    elsewhere = stored_message(bob, other, "c-1")
    rig.checks.remember_sent(bob, "c-1", elsewhere)
    await rig.checks.drain()
    assert await rig.check(bob, other, "c-1", sid="s2") == AlreadySent(elsewhere)
    assert rig.chat.asked == [(token(bob), other)]


async def test_a_resend_while_its_record_is_being_written_waits_for_the_write(rig: Rig) -> None:
    conversation, alice = uuid.uuid4(), uuid.uuid4()
    await rig.memberships.remember(conversation, [alice])
    stored = stored_message(alice, conversation, "c-1")

    rig.checks.remember_sent(alice, "c-1", stored)  # not awaited: the ack went out already
    assert await rig.check(alice, conversation, "c-1") == AlreadySent(stored)


async def test_a_record_that_cannot_be_written_is_logged(store: Store, fake_chat: FakeChat) -> None:
    unreachable = create_redis(RedisSettings(f"redis://127.0.0.1:{free_port()}/0", store.prefix))
    checks = SendChecks(
        unreachable,
        store.keys,
        TokenBuckets(unreachable, store.keys),
        MembershipDirectory(unreachable, store.keys, cast(ChatClient, fake_chat), 600),
        (PER_SOCKET, PER_USER),
    )
    alice = uuid.uuid4()
    try:
        with structlog.testing.capture_logs() as logs:
            checks.remember_sent(alice, "c-1", stored_message(alice, uuid.uuid4(), "c-1"))
            await asyncio.wait_for(checks.drain(), 10)
    finally:
        await unreachable.aclose()
    [failure] = [entry for entry in logs if entry["event"] == "sent_record_not_written"]
    assert failure["log_level"] == "error"
    assert failure["records"] == 1
    assert failure["exc_info"]


async def test_the_records_of_one_loop_turn_are_written_together(rig: Rig) -> None:
    conversation, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await rig.memberships.remember(conversation, [alice, bob])
    stored = {
        (user, client_id): stored_message(user, conversation, client_id)
        for user in (alice, bob)
        for client_id in ("c-1", "c-2")
    }
    for (user, client_id), message in stored.items():
        rig.checks.remember_sent(user, client_id, message)
    await rig.checks.drain()

    assert "SET" not in rig.redis.sent  # one pipeline, not a command per record
    for (user, client_id), message in stored.items():
        check = await rig.check(user, conversation, client_id, sid=f"{user}-{client_id}")
        assert check == AlreadySent(message)


def send_payload(conversation_id: uuid.UUID, client_message_id: str) -> dict[str, Any]:
    return {
        "conversationId": str(conversation_id),
        "content": "hello",
        "clientMessageId": client_message_id,
    }


async def test_the_record_written_after_the_ack_answers_a_resend_on_another_instance(
    gateway: Gateway,
) -> None:
    alice = gateway.identity()
    conversation = uuid.uuid4()
    gateway.chat.members[conversation] = [alice.user_id]
    instance = f"gateway-other-{uuid.uuid4().hex[:8]}"
    other = TestServer(
        create_app(load_settings({**gateway.env, "INSTANCE_ID": instance})), host="127.0.0.1"
    )
    await other.start_server()
    try:
        async with gateway.probe(MESSAGE_SEND) as commands:
            async with gateway.socket(alice.token) as here:
                sending = asyncio.ensure_future(
                    here.call("message:send", send_payload(conversation, "c-1"), timeout=10)
                )
                view = await gateway.answer_stored(await next_command(commands))
                ack = await asyncio.wait_for(sending, 5)
            assert ack["ok"] is True
            assert ack["message"]["id"] == str(view.id)

            async with connected_socket(str(other.make_url("")).rstrip("/"), alice.token) as there:
                resent = await there.call(
                    "message:send", send_payload(conversation, "c-1"), timeout=5
                )
            assert resent == ack
            assert await collect_settled(commands, quiet=0.3) == []
    finally:
        await other.close()
