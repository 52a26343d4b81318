"""Conversations over REST: direct and group creation, the list with its order, cursor, last
message and unread counts, renames, participants, who may see what, and the OpenAPI document."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from openapi_spec_validator import validate

from chat.routes import OPENAPI_PATH
from contracts.events import ConversationCreated, ConversationMemberAdded, ConversationMemberRemoved
from contracts.names import (
    CONVERSATION_CREATED,
    CONVERSATION_MEMBER_ADDED,
    CONVERSATION_MEMBER_REMOVED,
    CONVERSATION_UPDATED,
)
from devstack.api_routes import documented_operations, served_operations
from devstack.http_replies import every_page

if TYPE_CHECKING:
    from devstack.broker_probe import Probe
    from services.chat.tests.integration.chat_rig import Api, ChatServer

pytestmark = pytest.mark.integration


def ids(participants: list[dict[str, Any]]) -> set[str]:
    return {p["userId"] for p in participants}


def roles(conversation: dict[str, Any]) -> dict[str, str]:
    return {p["userId"]: p["role"] for p in conversation["participants"]}


# --- creating -------------------------------------------------------------------------------


async def test_a_direct_conversation_is_created_once_then_returned(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob = await chat_server.register(2)
    events = await probe(CONVERSATION_CREATED)

    first = await api.create(alice, bob, status=201)
    again = await api.create(alice, bob, status=200)
    reversed_pair = await api.create(bob, alice, status=200)

    assert first["type"] == "direct"
    assert first["title"] is None
    assert first["createdBy"] == alice.id
    assert again["id"] == reversed_pair["id"] == first["id"]
    assert ids(first["participants"]) == {alice.id, bob.id}
    assert set(roles(first).values()) == {"member"}
    names = {p["userId"]: (p["username"], p["displayName"]) for p in first["participants"]}
    assert names[bob.id] == (bob.username, bob.display_name)
    assert first["lastSeq"] == 0
    assert first["lastMessage"] is None
    assert first["unreadCount"] == 0

    [created] = await chat_server.events(events)
    assert isinstance(created.data, ConversationCreated)
    assert str(created.data.conversation_id) == first["id"]
    assert created.data.type == "direct"
    assert {str(i) for i in created.data.participant_ids} == {alice.id, bob.id}


async def test_concurrent_creates_of_one_pair_give_one_direct_conversation(
    api: Api, chat_server: ChatServer
) -> None:
    alice, bob = await chat_server.register(2)

    async def create(index: int) -> Any:
        creator, other = (alice, bob) if index % 2 else (bob, alice)
        return await api.call(
            "POST", "/api/chat", user=creator, json={"participantIds": [other.id]}
        )

    # More concurrent creates than the app has database connections.
    replies = await asyncio.wait_for(asyncio.gather(*(create(i) for i in range(24))), 30)

    assert sorted(reply.status for reply in replies) == [200] * 23 + [201]
    assert len({reply.json()["conversation"]["id"] for reply in replies}) == 1
    stored = await chat_server.fetchval(
        "SELECT count(*) FROM conversations c JOIN participants p ON p.conversation_id = c.id "
        "WHERE c.type = 'direct' AND p.user_id = $1",
        alice.uuid,
    )
    assert stored == 1


async def test_a_group_makes_its_creator_owner_and_the_others_members(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    owner, first, second = await chat_server.register(3)
    events = await probe(CONVERSATION_CREATED)

    group = await api.create(owner, first, second, first, owner, title="Launch")

    assert group["type"] == "group"
    assert group["title"] == "Launch"
    assert roles(group) == {owner.id: "owner", first.id: "member", second.id: "member"}
    [created] = await chat_server.events(events)
    assert created.data.participant_ids == [owner.uuid, first.uuid, second.uuid]


async def test_a_group_needs_no_title_and_two_people_without_a_type_make_a_group(
    api: Api, chat_server: ChatServer
) -> None:
    owner, first, second = await chat_server.register(3)

    untitled = await api.create(owner, first, type="group")
    inferred = await api.create(owner, first, second)

    assert (untitled["type"], untitled["title"]) == ("group", None)
    assert inferred["type"] == "group"
    assert untitled["id"] != (await api.create(owner, first, type="group"))["id"]


async def test_an_unknown_participant_is_refused(api: Api, chat_server: ChatServer) -> None:
    alice = await chat_server.one()
    stranger = str(uuid.uuid4())

    for body in (
        {"participantIds": [stranger]},
        {"participantIds": [stranger], "type": "group", "title": "Ghosts"},
    ):
        reply = await api.call("POST", "/api/chat", user=alice, json=body)
        assert reply.field_errors() == {"participantIds"}
        assert stranger in reply.json()["errors"][0]["message"]
    page = (await api.call("GET", "/api/chat", user=alice)).ok()
    assert page["conversations"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"participantIds": []}, "participantIds"),
        ({"participantIds": ["not-a-uuid"]}, "participantIds[0]"),
        ({"participantIds": "x"}, "participantIds"),
        ({"title": "No one"}, "participantIds"),
        ({"nickname": "x", "participantIds": []}, "nickname"),
        ({"participantIds": [str(uuid.uuid4())], "type": "channel"}, "type"),
        ({"participantIds": [str(uuid.uuid4())], "title": ""}, "title"),
        ({"participantIds": [str(uuid.uuid4())], "title": "t" * 201}, "title"),
    ],
)
async def test_a_malformed_create_request_names_the_field(
    api: Api, chat_server: ChatServer, body: dict[str, Any], field: str
) -> None:
    alice = await chat_server.one()
    reply = await api.call("POST", "/api/chat", user=alice, json=body)
    assert reply.field_errors() == {field}


async def test_a_conversation_shape_that_cannot_be_is_refused(
    api: Api, chat_server: ChatServer
) -> None:
    alice, bob, carol = await chat_server.register(3)
    cases = [
        ({"participantIds": [alice.id]}, "participantIds"),  # only oneself
        ({"participantIds": [bob.id, carol.id], "type": "direct"}, "participantIds"),
        ({"participantIds": [bob.id], "type": "direct", "title": "Us"}, "title"),
        ({"participantIds": [bob.id], "title": "Nul\u0000"}, "title"),
    ]
    for body, field in cases:
        reply = await api.call("POST", "/api/chat", user=alice, json=body)
        assert reply.field_errors() == {field}, body
    assert (await api.call("GET", "/api/chat", user=alice)).ok()["conversations"] == []


async def test_a_body_that_is_not_json_is_a_400(api: Api, chat_server: ChatServer) -> None:
    alice = await chat_server.one()
    reply = await api.call(
        "POST",
        "/api/chat",
        user=alice,
        data=b"{participantIds",
        headers={"Content-Type": "application/json"},
    )
    reply.problem(400)
    reply = await api.call(
        "POST", "/api/chat", user=alice, data=b"x", headers={"Content-Type": "text/plain"}
    )
    reply.problem(415)


# --- listing --------------------------------------------------------------------------------


async def test_the_ids_list_names_every_conversation_of_the_caller_and_only_theirs(
    api: Api, chat_server: ChatServer
) -> None:
    me, bob, carol = await chat_server.register(3)
    with_bob = (await api.create(me, bob))["id"]
    group = await api.group(carol, me)
    (await api.create(bob, carol))["id"]

    mine = (await api.call("GET", "/api/chat/ids", user=me)).ok()
    assert sorted(mine["conversationIds"]) == sorted([with_bob, group])
    # Taken part in: the one I opened; carol's group waits until I write or accept.
    assert mine["engagedIds"] == [with_bob]
    stranger = await chat_server.one()
    nothing = (await api.call("GET", "/api/chat/ids", user=stranger)).ok()
    assert nothing == {"conversationIds": [], "engagedIds": [], "blockedIds": []}
    assert (await api.call("GET", "/api/chat/ids")).status == 401


async def test_the_list_is_ordered_by_last_activity_with_last_message_and_unread_count(
    api: Api, chat_server: ChatServer
) -> None:
    me, bob, carol, dave = await chat_server.register(4)
    with_bob = (await api.create(me, bob))["id"]
    with_carol = (await api.create(me, carol))["id"]
    group = await api.group(dave, me, carol)

    listed = (await api.call("GET", "/api/chat", user=me)).ok()["conversations"]
    assert [c["id"] for c in listed] == [group, with_carol, with_bob]

    await api.send(bob, with_bob, "one")
    await api.send(bob, with_bob, "two")
    last = await api.send(bob, with_bob, "three")
    await api.send(me, with_carol, "mine")

    listed = (await api.call("GET", "/api/chat", user=me)).ok()["conversations"]
    assert [c["id"] for c in listed] == [with_carol, with_bob, group]
    by_id = {c["id"]: c for c in listed}
    assert by_id[with_bob]["lastMessage"] == last
    assert by_id[with_bob]["lastSeq"] == 3
    assert by_id[with_bob]["unreadCount"] == 3
    assert by_id[with_carol]["lastMessage"]["content"] == "mine"
    assert by_id[with_carol]["unreadCount"] == 0  # one's own message is read
    assert by_id[group]["lastMessage"] is None
    assert by_id[group]["unreadCount"] == 0
    assert by_id[with_bob]["lastActivityAt"] == last["createdAt"]

    (await api.call("POST", f"/api/chat/{with_bob}/read", user=me, json={"seq": 2})).ok()
    mine = await api.conversation(me, with_bob)
    assert mine["unreadCount"] == 1
    assert {p["userId"]: p["lastReadSeq"] for p in mine["participants"]} == {me.id: 2, bob.id: 3}
    assert (await api.conversation(bob, with_bob))["unreadCount"] == 0

    # A rename is activity too.
    reply = await api.call("PATCH", f"/api/chat/{group}", user=dave, json={"title": "Renamed"})
    reply.ok()
    listed = (await api.call("GET", "/api/chat", user=me)).ok()["conversations"]
    assert [c["id"] for c in listed] == [group, with_carol, with_bob]


async def test_the_list_pages_with_a_cursor_and_returns_each_conversation_once(
    api: Api, chat_server: ChatServer
) -> None:
    me = await chat_server.one()
    others = await chat_server.register(7)
    created = [(await api.create(me, other))["id"] for other in others]

    for limit in (1, 2, 3, 7, 50):
        listed = await every_page(
            lambda params: api.call("GET", "/api/chat", user=me, params=params),
            "conversations",
            limit,
        )
        assert [c["id"] for c in listed] == list(reversed(created)), limit

    # Activity while paging moves a conversation to the front; the rest stay in order.
    first = (await api.call("GET", "/api/chat", user=me, params={"limit": "3"})).ok()
    await api.send(others[0], created[0], "bump")
    rest = (
        await api.call(
            "GET", "/api/chat", user=me, params={"limit": "10", "cursor": first["nextCursor"]}
        )
    ).ok()
    seen = [c["id"] for c in first["conversations"] + rest["conversations"]]
    assert len(seen) == len(set(seen))
    assert set(seen) | {created[0]} == set(created)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "51"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": "WyJ4Il0"}, "cursor"),
        ({"sort": "name"}, "sort"),
    ],
)
async def test_a_malformed_list_query_is_a_422(
    api: Api, chat_server: ChatServer, params: dict[str, str], field: str
) -> None:
    me = await chat_server.one()
    reply = await api.call("GET", "/api/chat", user=me, params=params)
    assert reply.field_errors() == {field}


async def test_the_api_needs_a_valid_token(api: Api, chat_server: ChatServer) -> None:
    alice = await chat_server.one()
    conversation = (await api.create(alice, await chat_server.one()))["id"]
    for method, path in [
        ("GET", "/api/chat"),
        ("POST", "/api/chat"),
        ("GET", f"/api/chat/{conversation}"),
        ("GET", f"/api/chat/{conversation}/messages"),
        ("POST", f"/api/chat/{conversation}/messages"),
    ]:
        reply = await api.call(method, path, json={})
        assert reply.problem(401)
        assert reply.headers["WWW-Authenticate"] == "Bearer"
        forged = await api.call(method, path, json={}, headers={"Authorization": "Bearer a.b.c"})
        forged.problem(401)


# --- renames and participants ---------------------------------------------------------------


async def test_only_owners_and_admins_rename_a_group_and_a_direct_has_no_title(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    owner, member, admin = await chat_server.register(3)
    group = await api.group(owner, member, admin, title="Before")
    direct = (await api.create(owner, member))["id"]
    events = await probe(CONVERSATION_UPDATED)

    renamed = await api.call("PATCH", f"/api/chat/{group}", user=owner, json={"title": "After"})
    assert renamed.ok()["conversation"]["title"] == "After"
    refused = await api.call("PATCH", f"/api/chat/{group}", user=member, json={"title": "Mine"})
    refused.problem(403)
    await chat_server.make_admin(group, admin)
    cleared = await api.call("PATCH", f"/api/chat/{group}", user=admin, json={"title": None})
    assert cleared.ok()["conversation"]["title"] is None
    reply = await api.call("PATCH", f"/api/chat/{direct}", user=owner, json={"title": "Us"})
    reply.problem(409)
    reply = await api.call("PATCH", f"/api/chat/{group}", user=owner, json={"title": ""})
    assert reply.field_errors() == {"title"}

    updates = await chat_server.events(events)
    assert [(e.data.title, e.data.updated_by) for e in updates] == [
        ("After", owner.uuid),
        (None, admin.uuid),
    ]
    assert (await api.conversation(member, group))["title"] is None


async def test_owners_add_participants_and_each_new_one_is_announced(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    owner, member, newcomer, later = await chat_server.register(4)
    group = await api.group(owner, member)
    events = await probe(CONVERSATION_MEMBER_ADDED)

    reply = await api.call(
        "POST",
        f"/api/chat/{group}/participants",
        user=owner,
        json={"userIds": [newcomer.id, member.id, newcomer.id]},
    )
    conversation = reply.ok()["conversation"]
    assert roles(conversation) == {owner.id: "owner", member.id: "member", newcomer.id: "member"}

    reply = await api.call(
        "POST", f"/api/chat/{group}/participants", user=member, json={"userIds": [later.id]}
    )
    reply.problem(403)
    stranger = str(uuid.uuid4())
    reply = await api.call(
        "POST",
        f"/api/chat/{group}/participants",
        user=owner,
        json={"userIds": [later.id, stranger]},
    )
    assert reply.field_errors() == {"userIds"}
    reply = await api.call(
        "POST", f"/api/chat/{group}/participants", user=owner, json={"userIds": []}
    )
    assert reply.field_errors() == {"userIds"}

    [added] = await chat_server.events(events)
    assert isinstance(added.data, ConversationMemberAdded)
    assert (added.data.user_id, added.data.by, added.data.role) == (
        newcomer.uuid,
        owner.uuid,
        "member",
    )
    assert str(added.data.conversation_id) == group
    # The newcomer sees the conversation and its history.
    await api.send(owner, group, "welcome")
    assert (await api.conversation(newcomer, group))["unreadCount"] == 1
    (await api.call("GET", f"/api/chat/{group}", user=later)).problem(404)


async def test_leaving_and_removing_participants(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    owner, leaver, removed, bystander = await chat_server.register(4)
    group = await api.group(owner, leaver, removed, bystander)
    events = await probe(CONVERSATION_MEMBER_REMOVED)

    reply = await api.call("DELETE", f"/api/chat/{group}/participants/{removed.id}", user=bystander)
    reply.problem(403)
    reply = await api.call("DELETE", f"/api/chat/{group}/participants/{leaver.id}", user=leaver)
    assert reply.status == 204
    reply = await api.call("DELETE", f"/api/chat/{group}/participants/{removed.id}", user=owner)
    assert reply.status == 204
    reply = await api.call("DELETE", f"/api/chat/{group}/participants/{removed.id}", user=owner)
    reply.problem(404)

    for gone in (leaver, removed):
        (await api.call("GET", f"/api/chat/{group}", user=gone)).problem(404)
        listed = (await api.call("GET", "/api/chat", user=gone)).ok()["conversations"]
        assert group not in [c["id"] for c in listed]
    assert ids((await api.conversation(owner, group))["participants"]) == {owner.id, bystander.id}

    announced = await chat_server.events(events)
    assert all(isinstance(e.data, ConversationMemberRemoved) for e in announced)
    assert [(e.data.user_id, e.data.by) for e in announced] == [
        (leaver.uuid, leaver.uuid),
        (removed.uuid, owner.uuid),
    ]


async def test_a_direct_conversation_neither_grows_nor_shrinks(
    api: Api, chat_server: ChatServer
) -> None:
    alice, bob, carol = await chat_server.register(3)
    direct = (await api.create(alice, bob))["id"]

    reply = await api.call(
        "POST", f"/api/chat/{direct}/participants", user=alice, json={"userIds": [carol.id]}
    )
    reply.problem(409)
    reply = await api.call("DELETE", f"/api/chat/{direct}/participants/{alice.id}", user=alice)
    reply.problem(409)
    reply = await api.call("DELETE", f"/api/chat/{direct}/participants/{bob.id}", user=alice)
    reply.problem(409)
    assert ids((await api.conversation(bob, direct))["participants"]) == {alice.id, bob.id}


# --- who sees what --------------------------------------------------------------------------


async def test_a_non_participant_gets_404_for_everything_under_a_conversation(
    api: Api, chat_server: ChatServer
) -> None:
    owner, member, outsider = await chat_server.register(3)
    group = await api.group(owner, member)
    message = await api.send(member, group, "private")
    base = f"/api/chat/{group}"
    calls: list[tuple[str, str, Any]] = [
        ("GET", base, None),
        ("PATCH", base, {"title": "Mine now"}),
        ("GET", f"{base}/messages", None),
        ("POST", f"{base}/messages", {"content": "let me in"}),
        ("POST", f"{base}/read", {"seq": 1}),
        ("PATCH", f"{base}/messages/{message['id']}", {"content": "edited"}),
        ("DELETE", f"{base}/messages/{message['id']}", None),
        ("POST", f"{base}/participants", {"userIds": [outsider.id]}),
        ("DELETE", f"{base}/participants/{member.id}", None),
        ("DELETE", f"{base}/participants/{outsider.id}", None),
    ]
    for method, path, body in calls:
        reply = await api.call(method, path, user=outsider, json=body)
        assert reply.problem(404)["detail"] == "No such conversation", (method, path)

    listed = (await api.call("GET", "/api/chat", user=outsider)).ok()["conversations"]
    assert listed == []
    history = await api.history(owner, group)
    assert [(m["content"], m["editedAt"], m["deletedAt"]) for m in history] == [
        ("private", None, None)
    ]
    assert ids((await api.conversation(owner, group))["participants"]) == {owner.id, member.id}


@pytest.mark.parametrize(
    "bad", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%00", "x" * 300]
)
async def test_malformed_ids_are_404_never_500(api: Api, chat_server: ChatServer, bad: str) -> None:
    alice, bob = await chat_server.register(2)
    group = await api.group(alice, bob)
    message = (await api.send(alice, group, "hello"))["id"]
    calls: list[tuple[str, str, Any]] = [
        ("GET", f"/api/chat/{bad}", None),
        ("PATCH", f"/api/chat/{bad}", {"title": "x"}),
        ("GET", f"/api/chat/{bad}/messages", None),
        ("POST", f"/api/chat/{bad}/messages", {"content": "x"}),
        ("POST", f"/api/chat/{bad}/read", {"seq": 1}),
        ("POST", f"/api/chat/{bad}/participants", {"userIds": [bob.id]}),
        ("DELETE", f"/api/chat/{bad}/participants/{bob.id}", None),
        ("PATCH", f"/api/chat/{bad}/messages/{message}", {"content": "x"}),
        ("DELETE", f"/api/chat/{bad}/messages/{message}", None),
        ("PATCH", f"/api/chat/{group}/messages/{bad}", {"content": "x"}),
        ("DELETE", f"/api/chat/{group}/messages/{bad}", None),
        ("DELETE", f"/api/chat/{group}/participants/{bad}", None),
    ]
    for method, path, body in calls:
        reply = await api.call(method, path, user=alice, json=body)
        reply.problem(404)
    assert [m["content"] for m in await api.history(alice, group)] == ["hello"]


async def test_unknown_but_well_formed_ids_are_404(api: Api, chat_server: ChatServer) -> None:
    alice, bob = await chat_server.register(2)
    group = await api.group(alice, bob)
    unknown = str(uuid.uuid4())
    reply = await api.call("GET", f"/api/chat/{unknown}", user=alice)
    assert reply.problem(404)["detail"] == "No such conversation"
    reply = await api.call(
        "PATCH", f"/api/chat/{group}/messages/{unknown}", user=alice, json={"content": "x"}
    )
    assert reply.problem(404)["detail"] == "No such message"
    reply = await api.call("DELETE", f"/api/chat/{group}/messages/{unknown}", user=alice)
    assert reply.problem(404)["detail"] == "No such message"


# --- the document ---------------------------------------------------------------------------


async def test_the_openapi_document_is_valid_and_covers_every_api_route(
    api: Api, chat_server: ChatServer
) -> None:
    reply = await api.call("GET", OPENAPI_PATH)
    document = reply.ok()
    validate(document)
    assert document["info"]["title"] == "Chat API"

    served = served_operations(chat_server.app, "/api/", OPENAPI_PATH)
    assert served == documented_operations(document)
    assert len(served) == 24
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["security"] == [{"bearerAuth": []}], (method, path)
            assert "401" in operation["responses"], (method, path)
            if "{conversation_id}" in path or "{media_id}" in path:
                assert "404" in operation["responses"], (method, path)
