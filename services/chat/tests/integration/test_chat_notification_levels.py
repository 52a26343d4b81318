"""Who ``notification.requested`` asks the workers to notify: each participant's notification
level (``all``, ``mentions``, ``none``; direct conversations default to ``all``, groups to
``mentions``), the mentions, and the API that sets the level (and the mute shorthand). A
message that notifies nobody publishes no request."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from contracts.events import NotificationRequested
from contracts.names import MESSAGE_CREATED, NOTIFICATION_REQUESTED

if TYPE_CHECKING:
    from devstack.broker_probe import Probe
    from services.chat.tests.integration.chat_rig import Api, ChatServer, User

pytestmark = pytest.mark.integration


async def set_level(api: Api, user: User, conversation: str, level: str) -> dict[str, object]:
    reply = await api.call(
        "PUT", f"/api/chat/{conversation}/notifications", user=user, json={"level": level}
    )
    answer: dict[str, object] = reply.ok()
    return answer


async def test_message_created_names_the_mentioned_participants_but_not_the_sender(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob, carol, outsider = await chat_server.register(4, tag="m")
    group = await api.group(alice, bob, carol)
    events = await probe(NOTIFICATION_REQUESTED)

    content = (
        f"hi @{bob.username.upper()}, cc @{alice.username} @{outsider.username} "
        f"and mail {carol.username}@example.com."
    )
    await api.send(alice, group, content)

    [envelope] = await chat_server.events(events)
    requested: NotificationRequested = envelope.data
    assert requested.message.content == content
    # Case-insensitive; the sender and non-participants are not mentions; an e-mail is none.
    assert requested.mentioned_ids == [uuid.UUID(bob.id)]
    # A group notifies mentions only by default: nobody wants every message.
    assert requested.notify_ids == []


async def test_a_direct_conversation_notifies_the_other_of_every_message_until_they_say_less(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob = await chat_server.register(2, tag="m")
    direct = str((await api.create(alice, bob))["id"])
    events = await probe(NOTIFICATION_REQUESTED, MESSAGE_CREATED)

    await api.send(alice, direct, "one")
    assert await set_level(api, bob, direct, "mentions") == {
        "level": "mentions",
        "isDefault": False,
    }
    await api.send(alice, direct, "two")
    await api.send(alice, direct, f"three @{bob.username}")
    assert await set_level(api, bob, direct, "none") == {"level": "none", "isDefault": False}
    await api.send(alice, direct, f"four @{bob.username}")
    assert await set_level(api, bob, direct, "default") == {"level": "all", "isDefault": True}
    await api.send(alice, direct, "five")

    published = await chat_server.events(events)
    assert len([e for e in published if e.type == MESSAGE_CREATED]) == 5
    requests = [e.data for e in published if e.type == NOTIFICATION_REQUESTED]
    bob_id = uuid.UUID(bob.id)
    # "two" (bob at mentions, not named) and "four" (bob at none) ask for nothing.
    assert [(r.message.content, r.notify_ids, r.mentioned_ids) for r in requests] == [
        ("one", [bob_id], []),
        (f"three @{bob.username}", [], [bob_id]),
        ("five", [bob_id], []),
    ]


async def test_a_group_member_at_all_is_notified_of_others_messages_and_the_view_says_so(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob, carol = await chat_server.register(3, tag="m")
    group = await api.group(alice, bob, carol)
    events = await probe(NOTIFICATION_REQUESTED)
    assert (await api.conversation(bob, group))["notificationLevel"] == "mentions"

    assert await set_level(api, bob, group, "all") == {"level": "all", "isDefault": False}
    assert (await api.conversation(bob, group))["notificationLevel"] == "all"
    assert (await api.conversation(carol, group))["notificationLevel"] == "mentions"
    await api.send(alice, group, "to all")
    await api.send(bob, group, "bob's own")
    await api.send(alice, group, f"@{bob.username} named")

    requests = [e.data for e in await chat_server.events(events)]
    bob_id = uuid.UUID(bob.id)
    # Bob's own message asks for nothing: never the sender, and carol is at mentions.
    assert [(r.message.content, r.notify_ids, r.mentioned_ids) for r in requests] == [
        ("to all", [bob_id], []),
        (f"@{bob.username} named", [], [bob_id]),  # a mention once, not also as every message
    ]


async def test_mute_is_the_level_none_and_unmute_the_default(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob = await chat_server.register(2, tag="m")
    group = await api.group(alice, bob)
    events = await probe(NOTIFICATION_REQUESTED)

    reply = await api.call("PUT", f"/api/chat/{group}/mute", user=bob, json={"muted": True})
    assert reply.ok() == {"muted": True}
    assert (await api.conversation(bob, group))["notificationLevel"] == "none"
    await api.send(alice, group, f"one @{bob.username}")
    reply = await api.call("PUT", f"/api/chat/{group}/mute", user=bob, json={"muted": False})
    assert reply.ok() == {"muted": False}
    assert (await api.conversation(bob, group))["notificationLevel"] == "mentions"
    await api.send(alice, group, f"two @{bob.username}")

    [requested] = [e.data for e in await chat_server.events(events)]
    assert requested.message.content == f"two @{bob.username}"
    assert requested.mentioned_ids == [uuid.UUID(bob.id)]


async def test_levels_of_someone_elses_conversation_are_404_and_bad_bodies_are_422(
    api: Api, chat_server: ChatServer
) -> None:
    alice, bob, stranger = await chat_server.register(3, tag="m")
    group = await api.group(alice, bob)
    for path, body in (("mute", {"muted": True}), ("notifications", {"level": "none"})):
        url = f"/api/chat/{group}/{path}"
        assert (await api.call("PUT", url, user=stranger, json=body)).status == 404
        unknown = f"/api/chat/{uuid.uuid4()}/{path}"
        assert (await api.call("PUT", unknown, user=bob, json=body)).status == 404
    bad_bodies: list[tuple[str, Any]] = [
        ("mute", {"muted": "yes"}),
        ("mute", {}),
        ("mute", {"muted": True, "extra": 1}),
        ("notifications", {"level": "loud"}),
        ("notifications", {}),
        ("notifications", {"level": "all", "extra": 1}),
    ]
    for path, body in bad_bodies:
        bad = await api.call("PUT", f"/api/chat/{group}/{path}", user=bob, json=body)
        assert bad.status == 422, (path, body)
    assert (await api.conversation(bob, group))["notificationLevel"] == "mentions"
