"""``message.created`` names who was mentioned and who muted the conversation; the mute API."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from contracts.events import MessageCreated
from contracts.names import MESSAGE_CREATED

if TYPE_CHECKING:
    from services.chat.tests.integration.conftest import Api, ChatServer, Probe

pytestmark = pytest.mark.integration


async def test_message_created_names_the_mentioned_participants_but_not_the_sender(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob, carol, outsider = await chat_server.register(4, tag="m")
    group = await api.group(alice, bob, carol)
    events = await probe(MESSAGE_CREATED)

    content = (
        f"hi @{bob.username.upper()}, cc @{alice.username} @{outsider.username} "
        f"and mail {carol.username}@example.com."
    )
    await api.send(alice, group, content)

    [envelope] = await chat_server.events(events)
    created: MessageCreated = envelope.data
    # Case-insensitive; the sender and non-participants are not mentions; an e-mail is none.
    assert created.mentioned_ids == [uuid.UUID(bob.id)]
    assert created.muted_ids == []


async def test_a_muted_participant_is_named_in_message_created_until_unmuted(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    alice, bob = await chat_server.register(2, tag="m")
    group = await api.group(alice, bob)
    events = await probe(MESSAGE_CREATED)

    reply = await api.call("PUT", f"/api/chat/{group}/mute", user=bob, json={"muted": True})
    assert reply.ok() == {"muted": True}
    await api.send(alice, group, "one")
    reply = await api.call("PUT", f"/api/chat/{group}/mute", user=bob, json={"muted": False})
    assert reply.ok() == {"muted": False}
    await api.send(alice, group, "two")

    first, second = [e.data for e in await chat_server.events(events)]
    assert (first.message.content, first.muted_ids) == ("one", [uuid.UUID(bob.id)])
    assert (second.message.content, second.muted_ids) == ("two", [])


async def test_muting_a_conversation_of_someone_elses_is_404_and_bad_bodies_are_422(
    api: Api, chat_server: ChatServer
) -> None:
    alice, bob, stranger = await chat_server.register(3, tag="m")
    group = await api.group(alice, bob)
    foreign = await api.call("PUT", f"/api/chat/{group}/mute", user=stranger, json={"muted": True})
    assert foreign.status == 404
    for body in ({"muted": "yes"}, {}, {"muted": True, "extra": 1}):
        bad = await api.call("PUT", f"/api/chat/{group}/mute", user=bob, json=body)
        assert bad.status == 422, body
    unknown = await api.call(
        "PUT", f"/api/chat/{uuid.uuid4()}/mute", user=bob, json={"muted": True}
    )
    assert unknown.status == 404
