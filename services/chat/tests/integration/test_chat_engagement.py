"""Taking part in a conversation: its creator from the start, others once they write or
accept. Read markers are shared only by who took part, and chat announces each first time
(``conversation.engaged``), which the gateways use to share presence."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from contracts.names import CONVERSATION_ENGAGED, MESSAGE_READ

if TYPE_CHECKING:
    from devstack.broker_probe import Probe
    from services.chat.tests.integration.chat_rig import Api, ChatServer

pytestmark = pytest.mark.integration


async def test_a_conversation_someone_else_opened_shares_nothing_of_you_until_you_answer(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    opener, invited = await chat_server.register(2, tag="e")
    direct = str((await api.create(opener, invited))["id"])
    engaged = await probe(CONVERSATION_ENGAGED)
    reads = await probe(MESSAGE_READ)
    await api.send(opener, direct, "hello?")

    reply = await api.call("POST", f"/api/chat/{direct}/read", user=invited, json={"seq": 1})
    assert reply.ok() == {"lastReadSeq": 1, "unreadCount": 0}
    assert await chat_server.events(reads) == []  # the opener does not learn it was read
    seen_by_opener = await api.conversation(opener, direct)
    markers = {p["userId"]: p["lastReadSeq"] for p in seen_by_opener["participants"]}
    assert markers == {opener.id: 1, invited.id: 0}
    own = await api.conversation(invited, direct)
    assert {p["userId"]: p["lastReadSeq"] for p in own["participants"]}[invited.id] == 1
    ids = (await api.call("GET", "/api/chat/ids", user=invited)).ok()
    assert (ids["conversationIds"], ids["engagedIds"]) == ([direct], [])

    await api.send(invited, direct, "hi!")
    await api.send(invited, direct, "again")
    [first_time] = [e.data for e in await chat_server.events(engaged)]
    assert (first_time.conversation_id, first_time.user_id) == (uuid.UUID(direct), invited.uuid)
    ids = (await api.call("GET", "/api/chat/ids", user=invited)).ok()
    assert ids["engagedIds"] == [direct]
    seen_by_opener = await api.conversation(opener, direct)
    markers = {p["userId"]: p["lastReadSeq"] for p in seen_by_opener["participants"]}
    assert markers[invited.id] == 3  # their own messages count as read


async def test_accepting_takes_part_once_and_only_for_a_participant(
    api: Api, chat_server: ChatServer, probe: Probe
) -> None:
    opener, invited, stranger = await chat_server.register(3, tag="e")
    group = await api.group(opener, invited)
    engaged = await probe(CONVERSATION_ENGAGED)

    for _ in range(2):
        accepted = await api.call("POST", f"/api/chat/{group}/accept", user=invited)
        assert accepted.status == 204
    assert (await api.call("POST", f"/api/chat/{group}/accept", user=stranger)).status == 404
    unknown = f"/api/chat/{uuid.uuid4()}/accept"
    assert (await api.call("POST", unknown, user=invited)).status == 404

    [accepted] = [e.data for e in await chat_server.events(engaged)]
    assert accepted.user_id == invited.uuid
