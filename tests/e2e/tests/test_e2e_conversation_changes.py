"""Conversation changes live on sockets and replayed after an absence, through the API gateway
with real Socket.IO clients: members, titles, roles, edits, deletes and read markers."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp

from devstack.waiting import until
from e2e.accounts import accept, create_conversation, direct_conversation, register
from e2e.clients import connected_socket
from e2e.fleet import RunningFleet


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


class Recorder:
    """Every event of the given names a socket receives, in order."""

    def __init__(self, socket: Any, *names: str) -> None:
        self.seen: list[tuple[str, Any]] = []
        for name in names:
            socket.on(name, lambda data, name=name: self.seen.append((name, data)))

    def named(self, name: str) -> list[Any]:
        return [data for seen, data in self.seen if seen == name]

    async def wait_for(self, name: str, count: int = 1) -> list[Any]:
        await until(lambda: len(self.named(name)) >= count, what=f"{count} {name} event(s)")
        return self.named(name)


async def group_of(
    http: aiohttp.ClientSession, owner: dict[str, Any], *members: dict[str, Any]
) -> str:
    body = {"participantIds": [m["user"]["id"] for m in members], "title": "Trip", "type": "group"}
    status, created = await create_conversation(http, owner["token"], body)
    assert status == 201, created
    return str(created["conversation"]["id"])


async def api(
    http: aiohttp.ClientSession, method: str, path: str, user: dict[str, Any], **kwargs: Any
) -> tuple[int, Any]:
    async with http.request(method, path, headers=bearer(user), **kwargs) as reply:
        body = await reply.json(content_type=None) if reply.status != 204 else None
        return reply.status, body


async def test_a_member_added_while_online_gets_the_conversation_and_the_others_see_it(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    owner, bob, carol = [await register(http, tag="chg") for _ in range(3)]
    group = await group_of(http, owner, bob)
    await direct_conversation(http, owner, carol)  # chat knows carol
    names = ("conversation:created", "conversation:member-added", "message:received")
    async with (
        connected_socket(fleet.public_url, auth={"token": bob["token"]}) as bobs,
        connected_socket(fleet.public_url, auth={"token": carol["token"]}) as carols,
    ):
        bob_saw, carol_saw = Recorder(bobs, *names), Recorder(carols, *names)
        status, _ = await api(
            http,
            "POST",
            f"/api/chat/{group}/participants",
            owner,
            json={"userIds": [carol["user"]["id"]]},
        )
        assert status == 200
        [added] = await bob_saw.wait_for("conversation:member-added")
        assert added["conversationId"] == group
        assert (added["userId"], added["role"]) == (carol["user"]["id"], "member")
        assert added["by"] == owner["user"]["id"]
        assert added["changeSeq"] >= 1
        [created] = await carol_saw.wait_for("conversation:created")
        assert created["conversationId"] == group
        assert created["title"] == "Trip"
        assert set(created["participantIds"]) == {
            owner["user"]["id"],
            bob["user"]["id"],
            carol["user"]["id"],
        }
        assert [a["userId"] for a in await carol_saw.wait_for("conversation:member-added")] == [
            carol["user"]["id"]
        ]

        # Carol's socket is in the room from now on, without reconnecting.
        status, _ = await api(
            http, "POST", f"/api/chat/{group}/messages", owner, json={"content": "welcome"}
        )
        assert status == 201
        [welcome] = await carol_saw.wait_for("message:received")
        assert welcome["content"] == "welcome"


async def test_a_renamed_group_shows_the_new_title_on_every_device(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    owner, bob = await register(http, tag="chg"), await register(http, tag="chg")
    group = await group_of(http, owner, bob)
    async with (
        connected_socket(fleet.public_url, auth={"token": bob["token"]}) as phone,
        connected_socket(fleet.public_url, auth={"token": bob["token"]}) as laptop,
        connected_socket(fleet.public_url, auth={"token": owner["token"]}) as owners,
    ):
        devices = [Recorder(s, "conversation:updated") for s in (phone, laptop, owners)]
        status, _ = await api(http, "PATCH", f"/api/chat/{group}", owner, json={"title": "Rome"})
        assert status == 200
        for device in devices:
            [updated] = await device.wait_for("conversation:updated")
            assert updated["conversation"] == {"id": group, "title": "Rome"}
            assert updated["updatedBy"] == owner["user"]["id"]


async def test_an_admin_granted_by_the_owner_removes_a_member_who_then_hears_nothing_more(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    owner, admin, member = [await register(http, tag="adm") for _ in range(3)]
    group = await group_of(http, owner, admin, member)
    participant = f"/api/chat/{group}/participants"

    status, problem = await api(http, "DELETE", f"{participant}/{member['user']['id']}", admin)
    assert status == 403, problem  # not an admin yet
    status, problem = await api(
        http, "PATCH", f"{participant}/{member['user']['id']}", admin, json={"role": "admin"}
    )
    assert status == 403, problem  # only the owner grants roles

    async with (
        connected_socket(fleet.public_url, auth={"token": member["token"]}) as members,
        connected_socket(fleet.public_url, auth={"token": owner["token"]}) as owners,
    ):
        member_saw = Recorder(
            members,
            "conversation:member-updated",
            "conversation:member-removed",
            "message:received",
        )
        owner_saw = Recorder(owners, "conversation:member-removed", "message:received")
        status, view = await api(
            http, "PATCH", f"{participant}/{admin['user']['id']}", owner, json={"role": "admin"}
        )
        assert status == 200, view
        roles = {p["userId"]: p["role"] for p in view["conversation"]["participants"]}
        assert roles[admin["user"]["id"]] == "admin"
        [granted] = await member_saw.wait_for("conversation:member-updated")
        assert (granted["userId"], granted["role"]) == (admin["user"]["id"], "admin")

        # An admin removes a member, but not the owner.
        status, _ = await api(http, "DELETE", f"{participant}/{owner['user']['id']}", admin)
        assert status == 403
        status, _ = await api(http, "DELETE", f"{participant}/{member['user']['id']}", admin)
        assert status == 204
        [removed] = await member_saw.wait_for("conversation:member-removed")
        assert (removed["userId"], removed["by"]) == (member["user"]["id"], admin["user"]["id"])
        await owner_saw.wait_for("conversation:member-removed")

        status, _ = await api(
            http, "POST", f"/api/chat/{group}/messages", owner, json={"content": "after"}
        )
        assert status == 201
        await owner_saw.wait_for("message:received")
        await asyncio.sleep(0.3)  # the removed member's copy, if one were sent, arrives by now
        assert member_saw.named("message:received") == []  # left the room at once

    # The owner hands ownership over and becomes an admin.
    status, view = await api(
        http, "PATCH", f"{participant}/{admin['user']['id']}", owner, json={"role": "owner"}
    )
    assert status == 200, view
    roles = {p["userId"]: p["role"] for p in view["conversation"]["participants"]}
    assert (roles[admin["user"]["id"]], roles[owner["user"]["id"]]) == ("owner", "admin")


async def test_a_client_away_across_an_edit_a_delete_and_a_read_gets_each_once_on_return(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob = await register(http, tag="away"), await register(http, tag="away")
    conversation = await direct_conversation(http, alice, bob)
    await accept(http, bob, conversation)
    sent = []
    for text in ("one", "two", "three"):
        status, body = await api(
            http, "POST", f"/api/chat/{conversation}/messages", alice, json={"content": text}
        )
        assert status == 201
        sent.append(body["message"])
    status, view = await api(http, "GET", f"/api/chat/{conversation}", bob)
    held_seq = view["conversation"]["lastSeq"]
    held_change = view["conversation"]["lastChangeSeq"]  # what Bob's device holds

    # While this device of Bob's is away (he reads on another one):
    path = f"/api/chat/{conversation}/messages"
    assert (await api(http, "PATCH", f"{path}/{sent[0]['id']}", alice, json={"content": "1"}))[
        0
    ] == 200
    assert (await api(http, "DELETE", f"{path}/{sent[1]['id']}", alice))[0] == 204
    assert (await api(http, "POST", f"/api/chat/{conversation}/read", bob, json={"seq": 3}))[
        0
    ] == 200

    async def sync(socket: Any, since: int) -> dict[str, Any]:
        answer: dict[str, Any] = await socket.call(
            "sync",
            {"since": {conversation: held_seq}, "changesSince": {conversation: since}},
            timeout=10,
        )
        assert answer["ok"] is True, answer
        return dict(answer["conversations"][conversation])

    async with connected_socket(fleet.public_url, auth={"token": bob["token"]}) as bobs:
        caught_up = await sync(bobs, held_change)
        assert caught_up["messages"] == []  # no new message, only changes
        changes = caught_up["changes"]
        assert [c["event"] for c in changes] == [
            "message:updated",
            "message:deleted",
            "conversation:read",
        ]
        seqs = [c["changeSeq"] for c in changes]
        assert seqs == list(range(held_change + 1, held_change + 4))  # no gap, no repeat
        assert changes[0]["data"]["content"] == "1"
        assert changes[1]["data"]["messageId"] == sent[1]["id"]
        assert (changes[2]["data"]["userId"], changes[2]["data"]["seq"]) == (bob["user"]["id"], 3)
        assert caught_up["lastChangeSeq"] == seqs[-1]
        assert caught_up["hasMoreChanges"] is False
        # From the new position there is nothing more: nothing is returned twice.
        again = await sync(bobs, caught_up["lastChangeSeq"])
        assert again["changes"] == []

    status, page = await api(
        http, "GET", f"/api/chat/{conversation}/changes?after={held_change}&limit=2", bob
    )
    assert status == 200
    assert [c["changeSeq"] for c in page["changes"]] == seqs[:2]
    assert page["hasMore"] is True
    outsider = await register(http, tag="away")
    status, _ = await api(http, "GET", f"/api/chat/{conversation}/changes", outsider)
    assert status == 404


MEMBERSHIP_EVENTS = (
    "conversation:updated",
    "conversation:member-added",
    "conversation:member-updated",
    "conversation:member-removed",
)


async def test_a_client_away_across_a_rename_and_member_changes_gets_each_once_on_return(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    owner, bob, carol, dave = [await register(http, tag="away") for _ in range(4)]
    group = await group_of(http, owner, bob, dave)
    participant = f"/api/chat/{group}/participants"

    async with connected_socket(fleet.public_url, auth={"token": bob["token"]}) as laptop:
        live = Recorder(laptop, *MEMBERSHIP_EVENTS)  # Bob's other device stays online
        async with connected_socket(fleet.public_url, auth={"token": bob["token"]}) as phone:
            phone_saw = Recorder(phone, *MEMBERSHIP_EVENTS)
            status, _ = await api(
                http, "PATCH", f"/api/chat/{group}", owner, json={"title": "Paris"}
            )
            assert status == 200
            [renamed] = await phone_saw.wait_for("conversation:updated")
        held_change = renamed["changeSeq"]  # the last change the phone applied, then it left
        await live.wait_for("conversation:updated")
        status, view = await api(http, "GET", f"/api/chat/{group}", bob)
        assert status == 200
        held_seq = view["conversation"]["lastSeq"]
        assert view["conversation"]["lastChangeSeq"] == held_change

        # While the phone is away: a rename, a member added, a role, a member removed.
        status, _ = await api(http, "PATCH", f"/api/chat/{group}", owner, json={"title": "Rome"})
        assert status == 200
        status, _ = await api(
            http, "POST", participant, owner, json={"userIds": [carol["user"]["id"]]}
        )
        assert status == 200
        status, _ = await api(
            http, "PATCH", f"{participant}/{carol['user']['id']}", owner, json={"role": "admin"}
        )
        assert status == 200
        status, _ = await api(http, "DELETE", f"{participant}/{dave['user']['id']}", owner)
        assert status == 204
        for name in MEMBERSHIP_EVENTS:
            await live.wait_for(name, 2 if name == "conversation:updated" else 1)

        async with connected_socket(fleet.public_url, auth={"token": bob["token"]}) as phone:
            replayed_live = Recorder(phone, *MEMBERSHIP_EVENTS)
            answer = await phone.call(
                "sync",
                {"since": {group: held_seq}, "changesSince": {group: held_change}},
                timeout=10,
            )
            assert answer["ok"] is True, answer
            caught_up = answer["conversations"][group]
            assert caught_up["messages"] == []
            changes = caught_up["changes"]
            assert [c["event"] for c in changes] == [
                "conversation:updated",
                "conversation:member-added",
                "conversation:member-updated",
                "conversation:member-removed",
            ]
            seqs = [c["changeSeq"] for c in changes]
            assert seqs == list(range(held_change + 1, held_change + 5))  # no gap, no repeat
            renamed_to, added, promoted, removed = (c["data"] for c in changes)
            assert renamed_to["conversation"] == {"id": group, "title": "Rome"}
            assert renamed_to["updatedBy"] == owner["user"]["id"]
            assert (added["userId"], added["role"], added["by"]) == (
                carol["user"]["id"],
                "member",
                owner["user"]["id"],
            )
            assert (promoted["userId"], promoted["role"], promoted["by"]) == (
                carol["user"]["id"],
                "admin",
                owner["user"]["id"],
            )
            assert (removed["userId"], removed["by"]) == (dave["user"]["id"], owner["user"]["id"])
            for data in (added, promoted, removed):
                assert data["conversationId"] == group
            # Each replayed change is the event the device that stayed online got live.
            got_live = sorted(live.seen[1:], key=lambda seen: int(seen[1]["changeSeq"]))
            assert [(c["event"], c["data"]) for c in changes] == got_live
            assert [d["changeSeq"] for d in (renamed_to, added, promoted, removed)] == seqs
            assert caught_up["lastChangeSeq"] == seqs[-1]
            assert caught_up["hasMoreChanges"] is False

            again = await phone.call(
                "sync",
                {"since": {group: held_seq}, "changesSince": {group: seqs[-1]}},
                timeout=10,
            )
            assert again["conversations"][group]["changes"] == []
            await asyncio.sleep(0.3)
            assert replayed_live.seen == []  # what happened while away is not also sent live

    status, page = await api(http, "GET", f"/api/chat/{group}/changes?after={held_change}", bob)
    assert status == 200
    assert page["changes"] == changes  # REST answers exactly what sync did
    assert (page["lastChangeSeq"], page["hasMore"]) == (seqs[-1], False)
    status, _ = await api(http, "GET", f"/api/chat/{group}/changes", dave)
    assert status == 404  # removed: the conversation's log is no longer theirs


async def test_the_owner_revokes_admin_and_hands_ownership_over_live_but_cannot_demote_themself(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    owner, admin, member = [await register(http, tag="adm") for _ in range(3)]
    group = await group_of(http, owner, admin, member)
    participant = f"/api/chat/{group}/participants"

    def roles_in(view: dict[str, Any]) -> dict[str, str]:
        return {p["userId"]: p["role"] for p in view["conversation"]["participants"]}

    async with (
        connected_socket(fleet.public_url, auth={"token": owner["token"]}) as owners,
        connected_socket(fleet.public_url, auth={"token": admin["token"]}) as admins,
        connected_socket(fleet.public_url, auth={"token": member["token"]}) as members,
    ):
        sockets = [Recorder(s, "conversation:member-updated") for s in (owners, admins, members)]

        status, view = await api(
            http, "PATCH", f"{participant}/{admin['user']['id']}", owner, json={"role": "admin"}
        )
        assert status == 200, view
        # The owner revokes it: the role is gone, and every member's socket hears it.
        status, view = await api(
            http, "PATCH", f"{participant}/{admin['user']['id']}", owner, json={"role": "member"}
        )
        assert status == 200, view
        assert roles_in(view)[admin["user"]["id"]] == "member"
        for saw in sockets:
            granted, revoked = await saw.wait_for("conversation:member-updated", 2)
            assert (granted["userId"], granted["role"]) == (admin["user"]["id"], "admin")
            assert (revoked["userId"], revoked["role"], revoked["by"]) == (
                admin["user"]["id"],
                "member",
                owner["user"]["id"],
            )
            assert revoked["changeSeq"] == granted["changeSeq"] + 1
        held_change = view["conversation"]["lastChangeSeq"]

        # The owner cannot demote themself: 409, hand ownership over instead; nothing changes.
        for role in ("admin", "member"):
            async with http.patch(
                f"{participant}/{owner['user']['id']}", headers=bearer(owner), json={"role": role}
            ) as reply:
                problem = await reply.json(content_type=None)
                assert (reply.status, reply.content_type) == (409, "application/problem+json")
            assert problem["status"] == 409
            assert "hand ownership" in problem["detail"].lower()
        status, view = await api(http, "GET", f"/api/chat/{group}", owner)
        assert roles_in(view)[owner["user"]["id"]] == "owner"
        assert view["conversation"]["lastChangeSeq"] == held_change

        # The owner hands ownership over: two role changes, in order, live on every device.
        status, view = await api(
            http, "PATCH", f"{participant}/{admin['user']['id']}", owner, json={"role": "owner"}
        )
        assert status == 200, view
        roles = roles_in(view)
        assert (roles[admin["user"]["id"]], roles[owner["user"]["id"]]) == ("owner", "admin")
        for saw in sockets:
            seen = await saw.wait_for("conversation:member-updated", 4)
            handed = [(e["userId"], e["role"], e["by"], e["changeSeq"]) for e in seen[2:]]
            assert handed == [
                (admin["user"]["id"], "owner", owner["user"]["id"], held_change + 1),
                (owner["user"]["id"], "admin", owner["user"]["id"], held_change + 2),
            ]
        await asyncio.sleep(0.3)
        for saw in sockets:  # the refused demotions announced nothing
            assert len(saw.named("conversation:member-updated")) == 4

    # The former owner, an admin now, no longer changes roles; the new owner does.
    status, _ = await api(
        http, "PATCH", f"{participant}/{member['user']['id']}", owner, json={"role": "admin"}
    )
    assert status == 403
    status, view = await api(
        http, "PATCH", f"{participant}/{owner['user']['id']}", admin, json={"role": "member"}
    )
    assert status == 200, view
    assert roles_in(view)[owner["user"]["id"]] == "member"


async def test_a_deleted_message_leaves_no_text_in_the_changes_replayed_from_the_start(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob = await register(http, tag="scrub"), await register(http, tag="scrub")
    conversation = await direct_conversation(http, alice, bob)
    await accept(http, bob, conversation)
    path = f"/api/chat/{conversation}/messages"
    secret = uuid.uuid4().hex
    original, edited = f"first draft {secret}", f"second thoughts {secret}"
    kept = f"stays {uuid.uuid4().hex}"
    status, body = await api(http, "POST", path, alice, json={"content": original})
    assert status == 201, body
    message = body["message"]
    status, body = await api(http, "POST", path, alice, json={"content": "another"})
    assert status == 201, body
    other = body["message"]
    # An edit of a message that stays is a change that keeps its text.
    status, _ = await api(http, "PATCH", f"{path}/{other['id']}", alice, json={"content": kept})
    assert status == 200
    status, _ = await api(http, "PATCH", f"{path}/{message['id']}", alice, json={"content": edited})
    assert status == 200
    status, _ = await api(http, "DELETE", f"{path}/{message['id']}", alice)
    assert status == 204

    def check(changes: list[dict[str, Any]]) -> None:
        assert secret not in json.dumps(changes)  # neither the original nor the edited text
        assert [c["changeSeq"] for c in changes] == list(range(1, len(changes) + 1))
        assert [
            (c["event"], c["data"].get("id") or c["data"].get("messageId")) for c in changes
        ] == [
            ("message:updated", other["id"]),
            ("message:updated", message["id"]),
            ("message:deleted", message["id"]),
        ]
        assert changes[0]["data"]["content"] == kept
        # The edit of the deleted message shows it as the tombstone it now is.
        scrubbed = changes[1]["data"]
        assert (scrubbed["content"], scrubbed["attachments"]) == (None, [])
        assert scrubbed["deletedAt"] == changes[2]["data"]["deletedAt"]
        assert scrubbed["changeSeq"] == changes[1]["changeSeq"]

    status, page = await api(http, "GET", f"/api/chat/{conversation}/changes?after=0", bob)
    assert status == 200, page
    check(page["changes"])
    assert (page["lastChangeSeq"], page["hasMore"]) == (3, False)

    async with connected_socket(fleet.public_url, auth={"token": bob["token"]}) as bobs:
        answer = await bobs.call(
            "sync",
            {"since": {conversation: 0}, "changesSince": {conversation: 0}},
            timeout=10,
        )
        assert answer["ok"] is True, answer
        synced = answer["conversations"][conversation]
        check(synced["changes"])
        assert (synced["lastChangeSeq"], synced["hasMoreChanges"]) == (3, False)
        assert secret not in json.dumps(synced["messages"])
        tombstone = next(m for m in synced["messages"] if m["id"] == message["id"])
        deleted_at = synced["changes"][2]["data"]["deletedAt"]
        assert (tombstone["content"], tombstone["deletedAt"]) == (None, deleted_at)
