"""Messages over REST: sending with idempotency keys, content limits, the ``message.created``
event, history pages, read markers, edits, deletes, and bodies kept in MongoDB."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from chat.bodies import COLLECTION
from contracts.events import (
    MessageCreated,
    MessageDeleted,
    MessageRead,
    MessageUpdated,
    MessageView,
)
from contracts.names import (
    MESSAGE_CREATED,
    MESSAGE_DELETED,
    MESSAGE_READ,
    MESSAGE_UPDATED,
    NOTIFICATION_REQUESTED,
)
from servicekit.migrations import MigrationSet
from servicekit.resources import MONGO, POSTGRES

if TYPE_CHECKING:
    from devstack.broker_probe import Probe
    from services.chat.tests.integration.chat_rig import Api, ChatServer, User

pytestmark = pytest.mark.integration

MESSAGE_KEYS = {
    "id",
    "conversationId",
    "seq",
    "senderId",
    "content",
    "clientMessageId",
    "attachments",
    "createdAt",
    "editedAt",
    "deletedAt",
    "changeSeq",
}


async def three_people(api: Api, chat_server: ChatServer) -> tuple[str, User, User, User]:
    """A group of an owner and two members."""
    owner, first, second = await chat_server.register(3)
    return await api.group(owner, first, second), owner, first, second


# --- sending --------------------------------------------------------------------------------


async def test_a_sent_message_gets_the_next_seq_and_is_announced_once_to_everyone(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    group, owner, first, _second = await three_people(api, chat_server)
    events = await probe(MESSAGE_CREATED)
    requests = await probe(NOTIFICATION_REQUESTED)

    sent = [await api.send(sender, group, f"hello {n}") for n, sender in enumerate([first] * 3)]
    sent.append(await api.send(owner, group, "from the owner", client_message_id="c-1"))

    assert [m["seq"] for m in sent] == [1, 2, 3, 4]
    assert set(sent[0]) == MESSAGE_KEYS
    assert sent[0]["senderId"] == first.id
    assert sent[0]["conversationId"] == group
    assert sent[0]["clientMessageId"] is None
    assert sent[3]["clientMessageId"] == "c-1"
    assert (sent[0]["attachments"], sent[0]["editedAt"], sent[0]["deletedAt"]) == ([], None, None)

    announced = await chat_server.events(events)
    assert len(announced) == 4  # exactly once each
    assert all(isinstance(e.data, MessageCreated) for e in announced)
    assert [str(e.data.message.id) for e in announced] == [m["id"] for m in sent]
    # A group notifies mentions only by default, and these name nobody: no request.
    assert await chat_server.events(requests) == []
    assert announced[3].data.message.content == "from the owner"
    assert announced[3].data.message.client_message_id == "c-1"


async def test_a_repeated_client_message_id_returns_the_stored_message(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    group, owner, first, _ = await three_people(api, chat_server)
    events = await probe(MESSAGE_CREATED)

    stored = await api.send(first, group, "once", client_message_id="k-1", status=201)
    again = await api.send(first, group, "twice?", client_message_id="k-1", status=200)
    other_sender = await api.send(owner, group, "same key", client_message_id="k-1", status=201)

    assert again == stored
    assert again["content"] == "once"
    assert other_sender["seq"] == 2
    assert len(await chat_server.events(events)) == 2
    assert [m["content"] for m in await api.history(owner, group)] == ["once", "same key"]

    # The key belongs to the sender: reused in another conversation, it conflicts.
    other_group = await api.group(owner, first)
    reply = await api.call(
        "POST",
        f"/api/chat/{other_group}/messages",
        user=first,
        json={"content": "elsewhere", "clientMessageId": "k-1"},
    )
    reply.problem(409)
    assert await api.history(owner, other_group) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": ""}, "content"),
        ({"content": "   \n\t "}, "content"),
        ({"content": "x" * 16001}, "content"),
        ({"content": "é" * 16001}, "content"),
        ({"content": 42}, "content"),
        ({}, "content"),
        ({"content": "a\u0000b"}, "content"),
        ({"content": "hi", "clientMessageId": ""}, "clientMessageId"),
        ({"content": "hi", "clientMessageId": "k" * 65}, "clientMessageId"),
        ({"content": "hi", "clientMessageId": "nul\u0000"}, "clientMessageId"),
        ({"content": "hi", "attachments": [str(uuid.uuid4())]}, "attachments[0]"),
        ({"content": "hi", "attachments": ["nope"]}, "attachments[0]"),
        ({"content": "hi", "attachments": [str(uuid.uuid4()) for _ in range(11)]}, "attachments"),
        ({"content": "hi", "sticker": "cat"}, "sticker"),
    ],
)
async def test_content_and_attachments_outside_the_limits_are_a_422(
    api: Api, chat_server: ChatServer, body: dict[str, Any], field: str
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    reply = await api.call("POST", f"/api/chat/{direct}/messages", user=alice, json=body)
    assert reply.field_errors() == {field}
    assert await api.history(alice, direct) == []
    assert (await api.conversation(alice, direct))["lastSeq"] == 0


async def test_content_at_the_limit_is_kept_whole(api: Api, chat_server: ChatServer) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    longest = "ü" * 16000  # 16000 characters, 32000 bytes
    sent = await api.send(alice, direct, longest)
    [stored] = await api.history(bob, direct)
    assert sent["content"] == stored["content"] == longest
    assert (await api.send(alice, direct, " padded "))["content"] == " padded "


# --- history --------------------------------------------------------------------------------


async def test_history_pages_before_and_after_return_every_message_once(
    api: Api, chat_server: ChatServer
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    for n in range(1, 24):
        await api.send(alice if n % 3 else bob, direct, f"m{n}")
    everything = list(range(1, 24))

    newest = await api.page(bob, direct, limit="5")
    assert [m["seq"] for m in newest["messages"]] == [19, 20, 21, 22, 23]
    assert newest["hasMore"] is True
    default = await api.page(bob, direct)
    assert [m["seq"] for m in default["messages"]] == everything
    assert default["hasMore"] is False

    for limit in (1, 4, 5, 23, 100):
        backwards: list[int] = []
        page = await api.page(bob, direct, limit=str(limit))
        while True:
            seqs = [m["seq"] for m in page["messages"]]
            assert seqs == sorted(seqs)
            backwards = seqs + backwards
            if not page["hasMore"]:
                break
            page = await api.page(bob, direct, limit=str(limit), before=str(seqs[0]))
        assert backwards == everything, limit

        forwards = [m["seq"] for m in await api.history(bob, direct, limit=limit)]
        assert forwards == everything, limit

    middle = await api.page(alice, direct, after="10", limit="3")
    assert [(m["seq"], m["content"]) for m in middle["messages"]] == [
        (11, "m11"),
        (12, "m12"),
        (13, "m13"),
    ]
    assert (await api.page(alice, direct, after="23"))["messages"] == []
    assert (await api.page(alice, direct, before="1"))["messages"] == []
    assert (await api.page(alice, direct, after="22")) == {
        "messages": [default["messages"][-1]],
        "hasMore": False,
    }
    # Both: the messages between them, oldest first.
    between = await api.page(alice, direct, after="3", before="9", limit="3")
    assert [m["seq"] for m in between["messages"]] == [4, 5, 6]
    assert between["hasMore"] is True
    rest = await api.page(alice, direct, after="6", before="9", limit="3")
    assert ([m["seq"] for m in rest["messages"]], rest["hasMore"]) == ([7, 8], False)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"before": "0"},
        {"after": "-1"},
        {"after": "x"},
        {"after": "9223372036854775808"},
        {"before": "100000000000000000000000"},
        {"around": "3"},
    ],
)
async def test_a_malformed_history_query_is_a_422(
    api: Api, chat_server: ChatServer, params: dict[str, str]
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    reply = await api.call("GET", f"/api/chat/{direct}/messages", user=alice, params=params)
    reply.problem(422)


# --- read markers ---------------------------------------------------------------------------


async def test_the_read_marker_only_moves_forward_and_never_past_the_last_message(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    for n in range(3):
        await api.send(alice, direct, f"m{n}")
    # Read markers are announced only for who took part (test_chat_engagement.py).
    assert (await api.call("POST", f"/api/chat/{direct}/accept", user=bob)).status == 204
    events = await probe(MESSAGE_READ)

    async def read(seq: int) -> Any:
        reply = await api.call("POST", f"/api/chat/{direct}/read", user=bob, json={"seq": seq})
        return reply.ok()

    assert await read(0) == {"lastReadSeq": 0, "unreadCount": 3}
    assert await read(2) == {"lastReadSeq": 2, "unreadCount": 1}
    assert await read(2) == {"lastReadSeq": 2, "unreadCount": 1}
    assert await read(1) == {"lastReadSeq": 2, "unreadCount": 1}  # never backwards
    assert await read(99) == {"lastReadSeq": 3, "unreadCount": 0}  # never past the last
    assert await read(99) == {"lastReadSeq": 3, "unreadCount": 0}
    await api.send(alice, direct, "m3")
    assert await read(2) == {"lastReadSeq": 3, "unreadCount": 1}
    assert await read(4) == {"lastReadSeq": 4, "unreadCount": 0}

    moves = await chat_server.events(events)
    assert all(isinstance(e.data, MessageRead) for e in moves)
    assert [(e.data.user_id, e.data.seq) for e in moves] == [
        (bob.uuid, 2),
        (bob.uuid, 3),
        (
            bob.uuid,
            4,
        ),
    ]
    assert {str(e.data.conversation_id) for e in moves} == {direct}

    for seq in (-1, 2**63, "3"):
        reply = await api.call("POST", f"/api/chat/{direct}/read", user=bob, json={"seq": seq})
        assert reply.field_errors() == {"seq"}
    assert (await api.conversation(bob, direct))["unreadCount"] == 0


async def test_reading_an_empty_conversation_publishes_nothing(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    events = await probe(MESSAGE_READ)
    reply = await api.call("POST", f"/api/chat/{direct}/read", user=bob, json={"seq": 5})
    assert reply.ok() == {"lastReadSeq": 0, "unreadCount": 0}
    assert await chat_server.events(events) == []


# --- edits and deletes ----------------------------------------------------------------------


async def test_only_the_sender_edits_a_message(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    group, owner, author, other = await three_people(api, chat_server)
    message = await api.send(author, group, "first draft")
    path = f"/api/chat/{group}/messages/{message['id']}"
    events = await probe(MESSAGE_UPDATED)

    edited = (await api.call("PATCH", path, user=author, json={"content": "final"})).ok()["message"]
    assert edited["content"] == "final"
    assert edited["editedAt"] is not None
    assert datetime.fromisoformat(edited["editedAt"]) >= datetime.fromisoformat(edited["createdAt"])
    assert edited["changeSeq"] == message["changeSeq"] + 1 == 1  # the conversation's first change
    changed = ("content", "editedAt", "changeSeq")
    assert {k: v for k, v in edited.items() if k not in changed} == {
        k: v for k, v in message.items() if k not in changed
    }
    for refused_by in (other, owner):
        reply = await api.call("PATCH", path, user=refused_by, json={"content": "hijacked"})
        reply.problem(403)
    for body, field in [({"content": ""}, "content"), ({"content": "x" * 16001}, "content")]:
        assert (await api.call("PATCH", path, user=author, json=body)).field_errors() == {field}

    [stored] = await api.history(other, group)
    assert stored == edited
    [update] = await chat_server.events(events)
    assert isinstance(update.data, MessageUpdated)
    assert update.data.message.content == "final"
    assert update.data.message.edited_at is not None
    assert set(update.data.recipient_ids) == {owner.uuid, author.uuid, other.uuid}


async def test_the_sender_or_an_owner_or_admin_deletes_leaving_a_tombstone(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    group, owner, author, other = await three_people(api, chat_server)
    own = await api.send(author, group, "mine")
    by_owner = await api.send(author, group, "the owner removes this")
    by_admin = await api.send(author, group, "an admin removes this")
    kept = await api.send(other, group, "stays")
    events = await probe(MESSAGE_DELETED)

    def path(message: dict[str, Any]) -> str:
        return f"/api/chat/{group}/messages/{message['id']}"

    (await api.call("DELETE", path(own), user=other)).problem(403)
    assert (await api.call("DELETE", path(own), user=author)).status == 204
    assert (await api.call("DELETE", path(own), user=author)).status == 204  # already gone
    assert (await api.call("DELETE", path(by_owner), user=owner)).status == 204
    (await api.call("DELETE", path(by_admin), user=other)).problem(403)
    await chat_server.make_admin(group, other)
    assert (await api.call("DELETE", path(by_admin), user=other)).status == 204
    (await api.call("DELETE", path(kept), user=author)).problem(403)

    history = await api.history(owner, group)
    assert [m["seq"] for m in history] == [1, 2, 3, 4]
    for tombstone in history[:3]:
        assert tombstone["content"] is None
        assert tombstone["deletedAt"] is not None
        assert tombstone["senderId"] == author.id
    assert history[3] == kept
    reply = await api.call("PATCH", path(own), user=author, json={"content": "undo"})
    reply.problem(409)
    assert (await api.send(owner, group, "after"))["seq"] == 5  # a tombstone keeps its seq

    deleted = await chat_server.events(events)
    assert all(isinstance(e.data, MessageDeleted) for e in deleted)
    assert [(e.data.seq, e.data.deleted_by) for e in deleted] == [
        (1, author.uuid),
        (2, owner.uuid),
        (3, other.uuid),
    ]
    assert all(str(e.data.conversation_id) == group for e in deleted)
    assert set(deleted[0].data.recipient_ids) == {owner.uuid, author.uuid, other.uuid}


async def test_a_tombstone_is_the_last_message_of_the_list(
    api: Api, chat_server: ChatServer
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    message = await api.send(alice, direct, "oops")
    reply = await api.call("DELETE", f"/api/chat/{direct}/messages/{message['id']}", user=alice)
    assert reply.status == 204
    last = (await api.conversation(bob, direct))["lastMessage"]
    assert (last["id"], last["seq"], last["content"]) == (message["id"], 1, None)
    assert last["deletedAt"] is not None


async def test_a_deleted_message_leaves_no_text_in_the_change_log(
    api: Api, chat_server: ChatServer
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    secret = uuid.uuid4().hex
    small = await api.send(alice, direct, f"small {secret}")
    large = await api.send(alice, direct, f"large {secret} " + "x" * 400)  # kept in MongoDB
    kept = await api.send(alice, direct, "stays")

    def path(message: dict[str, Any]) -> str:
        return f"/api/chat/{direct}/messages/{message['id']}"

    edits = [
        (small, f"small, edited {secret}"),
        (kept, "stays, edited"),
        (large, f"large, edited {secret} " + "y" * 400),
        (small, f"small, edited again {secret}"),
    ]
    for message, content in edits:
        (await api.call("PATCH", path(message), user=alice, json={"content": content})).ok()
    for message in (small, large):
        assert (await api.call("DELETE", path(message), user=alice)).status == 204

    reply = await api.call("GET", f"/api/chat/{direct}/changes", user=bob, params={"after": "0"})
    page = reply.ok()
    assert secret.encode() not in reply.body
    changes = page["changes"]
    assert [c["changeSeq"] for c in changes] == [1, 2, 3, 4, 5, 6]  # every position, once
    assert [c["event"] for c in changes] == ["message:updated"] * 4 + ["message:deleted"] * 2
    deleted_at = {c["data"]["messageId"]: c["data"]["deletedAt"] for c in changes[4:]}
    for change, (message, _) in zip(changes[:4], edits, strict=True):
        shown = msgspec.json.decode(json.dumps(change["data"]), type=MessageView)  # the contract
        assert (shown.id, shown.change_seq) == (uuid.UUID(message["id"]), change["changeSeq"])
        assert shown.edited_at is not None
        if message is kept:
            assert (shown.content, shown.deleted_at) == ("stays, edited", None)
        else:  # the message as deleted: a client replaying the edit applies a tombstone
            assert (shown.content, shown.attachments) == (None, [])
            assert change["data"]["deletedAt"] == deleted_at[message["id"]]

    stored = await chat_server.fetch(
        "SELECT data::text AS data FROM conversation_changes WHERE conversation_id = $1",
        uuid.UUID(direct),
    )
    assert not [row for row in stored if secret in row["data"]]
    rows = await chat_server.fetch(
        "SELECT content, body_in_mongo FROM messages WHERE id = ANY($1::uuid[])",
        [uuid.UUID(small["id"]), uuid.UUID(large["id"])],
    )
    assert [(r["content"], r["body_in_mongo"]) for r in rows] == [(None, False)] * 2
    assert await chat_server.mongo_body(large["id"]) is None


async def test_the_migration_forgets_the_edits_of_messages_deleted_before_it(
    api: Api, chat_server: ChatServer
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    message = await api.send(alice, direct, "draft")
    path = f"/api/chat/{direct}/messages/{message['id']}"
    edited = (await api.call("PATCH", path, user=alice, json={"content": "leaked"})).ok()
    assert (await api.call("DELETE", path, user=alice)).status == 204
    # The edit as a delete before the migration left it.
    await chat_server.app[POSTGRES].execute(
        "UPDATE conversation_changes SET data = $2::jsonb "
        "WHERE conversation_id = $1 AND change_seq = 1",
        uuid.UUID(direct),
        json.dumps(edited["message"]),
    )

    [migration] = [m for m in MigrationSet.from_package("chat").migrations if m.version == 8]
    await chat_server.app[POSTGRES].execute(migration.sql)

    changes = (
        await api.call("GET", f"/api/chat/{direct}/changes", user=bob, params={"after": "0"})
    ).ok()["changes"]
    assert [c["changeSeq"] for c in changes] == [1, 2]
    assert changes[0]["data"] == {
        **edited["message"],
        "content": None,
        "attachments": [],
        "deletedAt": changes[1]["data"]["deletedAt"],
    }


# --- bodies in MongoDB ----------------------------------------------------------------------


async def test_large_bodies_round_trip_through_mongodb(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    events = await probe(MESSAGE_CREATED)
    large = "Large body ✓ " * 400  # ~5 KB, far above the 256-byte inline limit
    multibyte = "é" * 200  # 200 characters but 400 bytes: the limit counts bytes
    small = "fits inline"

    sent = [await api.send(alice, direct, text) for text in (large, multibyte, small)]

    assert [m["content"] for m in sent] == [large, multibyte, small]
    assert [m["content"] for m in await api.history(bob, direct)] == [large, multibyte, small]
    rows = await chat_server.fetch(
        "SELECT seq, content, body_in_mongo FROM messages WHERE conversation_id = $1 ORDER BY seq",
        uuid.UUID(direct),
    )
    assert [(r["content"], r["body_in_mongo"]) for r in rows] == [
        (None, True),
        (None, True),
        (small, False),
    ]
    assert await chat_server.mongo_body(sent[0]["id"]) == large
    assert await chat_server.mongo_body(sent[1]["id"]) == multibyte
    assert await chat_server.mongo_body(sent[2]["id"]) is None
    announced = await chat_server.events(events)
    assert [e.data.message.content for e in announced] == [large, multibyte, small]

    # An edit moves a body between the stores; a delete removes it from MongoDB.
    def path(message: dict[str, Any]) -> str:
        return f"/api/chat/{direct}/messages/{message['id']}"

    shrunk = await api.call("PATCH", path(sent[0]), user=alice, json={"content": "short now"})
    assert shrunk.ok()["message"]["content"] == "short now"
    grown = await api.call("PATCH", path(sent[2]), user=alice, json={"content": large + "!"})
    assert grown.ok()["message"]["content"] == large + "!"
    assert (await api.call("DELETE", path(sent[1]), user=alice)).status == 204

    assert [m["content"] for m in await api.history(bob, direct)] == [
        "short now",
        None,
        large + "!",
    ]
    assert await chat_server.mongo_body(sent[0]["id"]) is None
    assert await chat_server.mongo_body(sent[1]["id"]) is None
    assert await chat_server.mongo_body(sent[2]["id"]) == large + "!"
    assert (await api.conversation(bob, direct))["lastMessage"]["content"] == large + "!"


async def test_a_repeated_delete_removes_a_body_left_in_mongodb(
    api: Api, chat_server: ChatServer
) -> None:
    alice, bob = await chat_server.register(2)
    direct = (await api.create(alice, bob))["id"]
    message = await api.send(alice, direct, "Large body " * 40)
    path = f"/api/chat/{direct}/messages/{message['id']}"
    assert (await api.call("DELETE", path, user=alice)).status == 204
    # MongoDB failed after the commit (the client saw an error and deletes again).
    await chat_server.app[MONGO][COLLECTION].insert_one({"_id": message["id"], "content": "left"})

    assert (await api.call("DELETE", path, user=alice)).status == 204
    assert await chat_server.mongo_body(message["id"]) is None
