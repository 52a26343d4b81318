"""The send path for a batch of commands in one transaction (what ``messages.queue`` hands chat
at once): seqs in command order per conversation, idempotency across and inside the batch, a
refusal that is one command's outcome only, and a burst from the queue stored in batches."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from chat.handlers import CHAT_SERVICE
from chat.service import SendCommand, Sent
from contracts.envelope import Envelope
from contracts.events import MessageCreated
from contracts.names import MESSAGE_CREATED, MESSAGES_QUEUE
from servicekit.amqp.batch_consumer import BatchConsumerRunner
from servicekit.messaging import MESSAGING
from servicekit.problems import problem_for
from servicekit.refusals import Refusal

if TYPE_CHECKING:
    from devstack.broker_probe import Probe
    from services.chat.tests.integration.chat_rig import Api, ChatServer, User

pytestmark = pytest.mark.integration


def command(sender: User, conversation: str, content: str, client_id: str = "") -> SendCommand:
    return SendCommand(
        conversation_id=uuid.UUID(conversation),
        sender_id=sender.uuid,
        content=content,
        client_message_id=client_id or uuid.uuid4().hex,
        attachments=[],
    )


async def test_a_batch_gets_seqs_in_command_order_and_each_refusal_stays_its_own(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob, carol, outsider = await chat_server.register(4, tag="b")
    direct = str((await api.create(alice, bob))["id"])
    group = await api.group(alice, bob, carol)
    await api.send(alice, direct, "before the batch", client_message_id="used-in-direct")
    events = await probe(MESSAGE_CREATED)

    batch = [
        command(alice, group, "g1"),
        command(alice, direct, "d2"),
        command(bob, group, "g2", "bob-1"),
        command(outsider, group, "not a member"),
        command(bob, direct, "d3"),
        command(alice, group, "reuses an id of another conversation", "used-in-direct"),
        command(carol, group, "g3 \u0000 NUL"),
        command(bob, group, "bob-1 again, inside the batch", "bob-1"),
        command(carol, group, "g3"),
        command(alice, direct, "before the batch, again", "used-in-direct"),
    ]
    outcomes = await chat_server.app[CHAT_SERVICE].send_all(batch)

    def summary(outcome: Sent | Refusal) -> tuple[object, ...]:
        if isinstance(outcome, Refusal):
            return ("refused", problem_for(outcome).status)
        return (outcome.message.content, outcome.message.seq, outcome.created)

    assert [summary(o) for o in outcomes] == [
        ("g1", 1, True),
        ("d2", 2, True),
        ("g2", 2, True),
        ("refused", 404),
        ("d3", 3, True),
        ("refused", 409),
        ("refused", 422),
        ("g2", 2, False),  # the same (sender, clientMessageId) earlier in the batch
        ("g3", 3, True),
        ("before the batch", 1, False),  # stored before the batch
    ]
    group_history = [(m["seq"], m["content"]) for m in await api.history(carol, group)]
    assert group_history == [(1, "g1"), (2, "g2"), (3, "g3")]
    direct_history = [(m["seq"], m["content"]) for m in await api.history(bob, direct)]
    assert direct_history == [(1, "before the batch"), (2, "d2"), (3, "d3")]
    announced = [e.data for e in await chat_server.events(events)]
    assert all(isinstance(e, MessageCreated) for e in announced)
    assert [e.message.content for e in announced] == ["g1", "d2", "g2", "d3", "g3"]
    # Each sender's read marker is their newest message; others count them unread.
    assert (await api.conversation(bob, group))["unreadCount"] == 1
    assert (await api.conversation(alice, direct))["unreadCount"] == 1

    # The whole batch again (a redelivery): nothing new is stored or announced.
    again = await chat_server.app[CHAT_SERVICE].send_all(batch)
    assert [summary(o) for o in again] == [
        (s[0], s[1], False) if s[0] != "refused" else s for s in map(summary, outcomes)
    ]
    assert len(await api.history(carol, group)) == 3
    assert await chat_server.events(events) == []


async def test_a_burst_from_the_queue_is_stored_in_batches_in_publish_order(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob = await chat_server.register(2, tag="b")
    direct = str((await api.create(alice, bob))["id"])
    group = await api.group(bob, alice)
    [runner] = [
        c
        for c in chat_server.app[MESSAGING].consumers
        if isinstance(c, BatchConsumerRunner) and c.queue_name == MESSAGES_QUEUE
    ]
    batches_before = runner.batches
    events = await probe(MESSAGE_CREATED)

    burst = [
        chat_server.send_command(
            alice if n % 3 else bob, direct if n % 2 else group, f"m{n}", f"burst-{n}"
        )
        for n in range(120)
    ]
    await chat_server.publisher.publish_envelopes(burst)
    announced: list[Envelope[Any]] = []
    while len(announced) < 120:
        announced += await chat_server.events(events)

    for conversation, parity in ((direct, 1), (group, 0)):
        history = await api.history(alice, conversation)
        expected = [f"m{n}" for n in range(120) if n % 2 == parity]
        assert [m["content"] for m in history] == expected
        assert [m["seq"] for m in history] == list(range(1, 61))
    assert sorted(e.data.message.content for e in announced) == sorted(f"m{n}" for n in range(120))
    assert runner.batches - batches_before < 120, "a burst is stored more than one at a time"
