"""The queue side of the send path: ``message.send`` commands on ``messages.queue``, as the
gateway publishes them, stored once each, with poison commands dead-lettered."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from contracts import make_envelope
from contracts.envelope import encode_envelope
from contracts.events import MessageAlreadyStored, MessageCreated, UserRegistered
from contracts.names import (
    MESSAGE_ALREADY_STORED,
    MESSAGE_CREATED,
    MESSAGE_REFUSED,
    MESSAGE_SEND,
    NOTIFICATION_REQUESTED,
)
from devstack.waiting import until_equal
from servicekit.amqp.consumer import REASON_HEADER

if TYPE_CHECKING:
    from devstack.broker_probe import Probe
    from services.chat.tests.integration.chat_rig import Api, ChatServer, User

pytestmark = pytest.mark.integration


async def stored_count(chat_server: ChatServer, conversation_id: str) -> int:
    count: int = await chat_server.fetchval(
        "SELECT count(*) FROM messages WHERE conversation_id = $1", uuid.UUID(conversation_id)
    )
    return count


async def until_stored(chat_server: ChatServer, conversation_id: str, count: int) -> None:
    await until_equal(lambda: stored_count(chat_server, conversation_id), count, timeout=20)


async def pair(api: Api, chat_server: ChatServer) -> tuple[str, User, User]:
    alice, bob = await chat_server.register(2)
    return (await api.create(alice, bob))["id"], alice, bob


async def test_a_message_send_command_is_stored_and_announced_like_a_rest_send(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    direct, alice, bob = await pair(api, chat_server)
    events = await probe(MESSAGE_CREATED)
    requests = await probe(NOTIFICATION_REQUESTED)

    await api.send(bob, direct, "over REST")
    command = await chat_server.publish_send(alice, direct, "over the queue", "q-1")
    await until_stored(chat_server, direct, 2)
    await api.send(bob, direct, "REST again")

    history = await api.history(bob, direct)
    assert [(m["seq"], m["senderId"], m["content"]) for m in history] == [
        (1, bob.id, "over REST"),
        (2, alice.id, "over the queue"),
        (3, bob.id, "REST again"),
    ]
    assert history[1]["clientMessageId"] == "q-1"
    announced = await chat_server.events(events)
    assert [e.data.message.seq for e in announced] == [1, 2, 3]
    assert isinstance(announced[1].data, MessageCreated)
    # A direct conversation notifies the other participant of every message by default.
    asked = [(e.data.message.seq, e.data.notify_ids) for e in await chat_server.events(requests)]
    assert asked == [(1, [alice.uuid]), (2, [bob.uuid]), (3, [alice.uuid])]
    assert str(announced[1].data.message.id) == history[1]["id"]
    # The sender's own message counts as read.
    assert (await api.conversation(alice, direct))["unreadCount"] == 1
    assert command.data.client_message_id == "q-1"


async def test_a_redelivered_command_is_applied_once(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    direct, alice, bob = await pair(api, chat_server)
    acked = chat_server.consumed("acked")
    events = await probe(MESSAGE_CREATED)

    command = chat_server.send_command(alice, direct, "exactly once")
    await chat_server.publisher.publish_envelopes([command, command, command])
    await chat_server.consumed_reaches("acked", acked + 3)
    await chat_server.publisher.publish_envelopes([command])
    await chat_server.consumed_reaches("acked", acked + 4)

    # Nothing is recorded per command: the (sender, clientMessageId) key makes repeats no-ops.
    assert [m["content"] for m in await api.history(bob, direct)] == ["exactly once"]
    assert len(await chat_server.events(events)) == 1


async def test_a_resent_client_message_id_is_stored_once_whichever_way_it_comes(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    direct, alice, bob = await pair(api, chat_server)
    acked = chat_server.consumed("acked")
    events = await probe(MESSAGE_CREATED)
    answers = await probe(MESSAGE_ALREADY_STORED)

    # New envelopes (a gateway retrying), the same clientMessageId.
    first = chat_server.send_command(alice, direct, "the original", "retry-me")
    second = chat_server.send_command(alice, direct, "a retry", "retry-me")
    await chat_server.publisher.publish_envelopes([first])
    await chat_server.consumed_reaches("acked", acked + 1)
    await chat_server.publisher.publish_envelopes([second])
    await chat_server.consumed_reaches("acked", acked + 2)
    over_rest = await api.send(alice, direct, "and REST", client_message_id="retry-me", status=200)

    [stored] = await api.history(bob, direct)
    assert stored == over_rest
    assert (stored["content"], stored["seq"]) == ("the original", 1)
    assert len(await chat_server.events(events)) == 1
    # The queued resend is answered to its sender alone (a REST resend has its answer).
    [answer] = await chat_server.events(answers)
    assert isinstance(answer.data, MessageAlreadyStored)
    assert str(answer.data.message.id) == stored["id"]
    assert answer.data.message.client_message_id == "retry-me"


async def test_a_command_that_does_not_decode_ends_in_the_dead_letter_queue(
    api: Api, chat_server: ChatServer
) -> None:
    direct, alice, bob = await pair(api, chat_server)
    valid = chat_server.send_command(alice, direct, "fine")
    blank: dict[str, Any] = json.loads(encode_envelope(valid))
    blank["id"] = str(uuid.uuid4())
    blank["data"]["content"] = "   "
    other_type = make_envelope(
        UserRegistered(
            user_id=uuid.uuid4(),
            email="x@example.com",
            username="xyz",
            display_name="X",
            created_at=datetime.now(UTC),
        ),
        producer="auth",
    )
    dead = chat_server.consumed("dead_lettered")

    poisons = {
        await chat_server.publish_raw(b"{not json at all"): "undecodable",
        await chat_server.publish_raw(json.dumps(blank).encode()): "undecodable",
        await chat_server.publish_raw(encode_envelope(other_type)): "unexpected type",
    }
    await chat_server.publisher.publish_envelopes([valid])

    for message_id, reason in poisons.items():
        message = await chat_server.dead_lettered(message_id)
        assert str(message.headers[REASON_HEADER]).startswith(reason), message.headers
        assert message.headers["x-original-routing-key"] == MESSAGE_SEND
        assert message.headers["x-consumer"] == "chat.messages.queue"
    assert chat_server.consumed("dead_lettered") == dead + 3
    # The consumer lives on: the valid command behind the poisons is stored.
    await until_stored(chat_server, direct, 1)
    assert [m["content"] for m in await api.history(bob, direct)] == ["fine"]


async def test_a_command_chat_refuses_is_acked_and_announced_without_a_message_or_a_retry(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    direct, alice, _ = await pair(api, chat_server)
    outsider = await chat_server.one()
    acked, retried = chat_server.consumed("acked"), chat_server.consumed("retried")
    dead = chat_server.consumed("dead_lettered")
    refusals = await probe(MESSAGE_REFUSED)

    await chat_server.publish_send(outsider, direct, "not my conversation", "r-1")
    await chat_server.publish_send(alice, str(uuid.uuid4()), "no such conversation", "r-2")
    await chat_server.publish_send(alice, direct, "nul \u0000 inside", "r-3")
    await chat_server.consumed_reaches("acked", acked + 3)

    assert await stored_count(chat_server, direct) == 0
    assert chat_server.consumed("retried") == retried
    assert chat_server.consumed("dead_lettered") == dead
    # The senders' waiting acks are answered by these (the gateway), not left to time out.
    announced = sorted(
        (e.data.client_message_id, e.data.sender_id, e.data.code)
        for e in await chat_server.events(refusals)
    )
    assert announced == [
        ("r-1", outsider.uuid, "not_found"),
        ("r-2", alice.uuid, "not_found"),
        ("r-3", alice.uuid, "invalid"),
    ]


async def test_a_large_body_sent_through_the_queue_round_trips_through_mongodb(
    api: Api, chat_server: ChatServer
) -> None:
    direct, alice, bob = await pair(api, chat_server)
    large = "queued ✉ " * 300

    await chat_server.publish_send(alice, direct, large)
    await until_stored(chat_server, direct, 1)

    [stored] = await api.history(bob, direct)
    assert stored["content"] == large
    assert await chat_server.mongo_body(stored["id"]) == large
    assert await chat_server.fetchval(
        "SELECT body_in_mongo AND content IS NULL FROM messages WHERE id = $1",
        uuid.UUID(stored["id"]),
    )
