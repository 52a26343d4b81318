"""Many writers into one conversation at once, through REST and the queue together: the seq
stays gap-free and unique, every message is stored and announced once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from contracts.envelope import decode_envelope
from contracts.names import MESSAGE_CREATED, NOTIFICATION_REQUESTED
from devstack.broker_probe import collect, collect_settled
from devstack.waiting import until_equal

if TYPE_CHECKING:
    from devstack.broker_probe import Probe
    from services.chat.tests.integration.chat_rig import Api, ChatServer, User

pytestmark = pytest.mark.integration

SENDERS = 50
PER_SENDER = 20


async def until_last_seq(chat_server: ChatServer, conversation_id: str, seq: int) -> None:
    await until_equal(
        lambda: chat_server.fetchval(
            "SELECT last_seq FROM conversations WHERE id = $1", uuid.UUID(conversation_id)
        ),
        seq,
        timeout=60,
    )


async def test_50_senders_of_20_messages_through_rest_and_the_queue_get_seq_1_to_1000(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    senders = await chat_server.register(SENDERS, tag="c")
    group = await api.group(senders[0], *senders[1:], title="Crowd")
    rest, queued = senders[: SENDERS // 2], senders[SENDERS // 2 :]
    events = await probe(MESSAGE_CREATED)
    requests = await probe(NOTIFICATION_REQUESTED)

    async def over_rest(sender: User) -> list[int]:
        seqs = []
        for n in range(PER_SENDER):
            message = await api.send(sender, group, f"{sender.id} #{n}", f"{sender.id}:{n}")
            seqs.append(message["seq"])
        return seqs

    async def over_the_queue(sender: User) -> None:
        for n in range(PER_SENDER):
            await chat_server.publish_send(sender, group, f"{sender.id} #{n}", f"{sender.id}:{n}")

    rest_results, _ = await asyncio.gather(
        asyncio.gather(*(over_rest(sender) for sender in rest)),
        asyncio.gather(*(over_the_queue(sender) for sender in queued)),
    )
    total = SENDERS * PER_SENDER
    await until_last_seq(chat_server, group, total)

    history = await api.history(senders[0], group, limit=100)
    assert [m["seq"] for m in history] == list(range(1, total + 1))
    assert len({m["id"] for m in history}) == total
    keys = Counter((m["senderId"], m["clientMessageId"]) for m in history)
    assert set(keys.values()) == {1}
    assert set(keys) == {(s.id, f"{s.id}:{n}") for s in senders for n in range(PER_SENDER)}
    for message in history:
        assert message["content"] == message["clientMessageId"].replace(":", " #")

    # Each REST sender's messages are in its send order, with the seqs its replies gave.
    by_sender: dict[str, list[dict[str, Any]]] = {}
    for message in history:
        by_sender.setdefault(message["senderId"], []).append(message)
    for sender, seqs in zip(rest, rest_results, strict=True):
        mine = by_sender[sender.id]
        assert [m["content"] for m in mine] == [f"{sender.id} #{n}" for n in range(PER_SENDER)]
        assert [m["seq"] for m in mine] == seqs
    for sender in queued:
        assert len(by_sender[sender.id]) == PER_SENDER
    # The two paths really wrote at the same time: their seqs interleave.
    rest_seqs = [seq for seqs in rest_results for seq in seqs]
    queued_seqs = sorted(set(range(1, total + 1)) - set(rest_seqs))
    assert min(queued_seqs) < max(rest_seqs)
    assert min(rest_seqs) < max(queued_seqs)

    # message.created: exactly one per message.
    await chat_server.outbox_drained(timeout=60)
    received = await collect(events, total, timeout=60)
    received += await collect_settled(events, quiet=0.3)
    announced = [decode_envelope(message.body).data for message in received]
    assert sorted(event.message.seq for event in announced) == list(range(1, total + 1))
    # A group message naming nobody asks the workers for nothing.
    assert await collect_settled(requests, quiet=0.3) == []

    for user in (senders[0], queued[-1]):
        conversation = await api.conversation(user, group)
        assert conversation["lastSeq"] == total
        assert conversation["lastMessage"]["seq"] == total


async def test_the_same_client_message_id_sent_concurrently_is_stored_once(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob = await chat_server.register(2)
    group = await api.group(alice, bob)
    acked = chat_server.consumed("acked")
    events = await probe(MESSAGE_CREATED)

    async def over_rest(n: int) -> Any:
        return await api.call(
            "POST",
            f"/api/chat/{group}/messages",
            user=alice,
            json={"content": f"attempt {n}", "clientMessageId": "same"},
        )

    commands = [chat_server.send_command(alice, group, f"queued {n}", "same") for n in range(10)]
    replies, _ = await asyncio.gather(
        asyncio.gather(*(over_rest(n) for n in range(20))),
        chat_server.publisher.publish_envelopes(commands),
    )
    await chat_server.consumed_reaches("acked", acked + len(commands))

    [stored] = await api.history(bob, group)
    statuses = sorted(reply.status for reply in replies)
    # Whoever came first created it: one REST 201, or none if a command was first.
    created_over_rest = stored["content"].startswith("attempt")
    assert statuses == [200] * (20 - created_over_rest) + [201] * created_over_rest
    assert {reply.json()["message"]["id"] for reply in replies} == {stored["id"]}
    assert stored["seq"] == 1
    assert (await api.conversation(bob, group))["lastSeq"] == 1
    assert len(await chat_server.events(events)) == 1


async def test_concurrent_large_sends_with_one_client_message_id_store_one_body(
    api: Api, chat_server: ChatServer
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    bodies = [f"variant {n} " + "x" * 400 for n in range(6)]

    replies = await asyncio.gather(
        *(
            api.call(
                "POST",
                f"/api/chat/{direct}/messages",
                user=alice,
                json={"content": body, "clientMessageId": "big"},
            )
            for body in bodies
        )
    )

    assert sorted(reply.status for reply in replies) == [200] * 5 + [201]
    [stored] = await api.history(bob, direct)
    assert stored["content"] in bodies
    assert await chat_server.mongo_body(stored["id"]) == stored["content"]
    assert {reply.json()["message"]["content"] for reply in replies} == {stored["content"]}
