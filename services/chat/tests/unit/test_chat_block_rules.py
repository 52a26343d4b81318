"""Blocking on fakes: whom one may block, a block announced once, an unblock of what was
blocked, and what a block bars afterwards."""

from __future__ import annotations

import uuid

import pytest

from chat.api import CreateConversationRequest
from contracts.events import ContactBlocked, ContactUnblocked
from servicekit.problems import problem_for
from servicekit.refusals import InvalidInput, NotFound
from services.chat.tests.unit.fake_stores import FakeChat


@pytest.fixture
def chat() -> FakeChat:
    return FakeChat()


async def test_nobody_blocks_themself(chat: FakeChat) -> None:
    ann = chat.user("ann")

    with pytest.raises(InvalidInput) as refused:
        await chat.blocks.block(ann, ann)

    answer = problem_for(refused.value)
    assert (answer.status, answer.title) == (422, "Validation failed")
    assert [(e.field, e.message) for e in answer.errors or []] == [
        ("userId", "you cannot block yourself")
    ]
    assert chat.uow.commits == 0


async def test_an_unknown_or_deleted_user_cannot_be_blocked(chat: FakeChat) -> None:
    ann, gone = chat.user("ann"), chat.user("gone")
    await chat.service.forget_user(None, gone, chat.clock())
    chat.uow.take_events()

    for nobody in (uuid.uuid4(), gone):
        with pytest.raises(NotFound, match="No such user"):
            await chat.blocks.block(ann, nobody)

    assert chat.tables.blocks == {}
    assert chat.uow.events == []


async def test_blocking_twice_is_announced_once(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")

    await chat.blocks.block(ann, bob)
    await chat.blocks.block(ann, bob)

    [event] = chat.uow.take_events()
    assert isinstance(event, ContactBlocked)
    assert (event.blocker_id, event.blocked_id) == (ann, bob)
    assert [b.user_id for b in (await chat.blocks.blocks(ann)).blocks] == [bob]
    assert (await chat.service.conversation_ids(ann)).blocked_ids == [bob]


async def test_only_a_standing_block_is_lifted(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")

    with pytest.raises(NotFound, match="You have not blocked this user"):
        await chat.blocks.unblock(ann, bob)
    await chat.blocks.block(bob, ann)
    with pytest.raises(NotFound):  # the other direction is not the caller's to lift
        await chat.blocks.unblock(ann, bob)
    await chat.blocks.unblock(bob, ann)

    assert [type(e) for e in chat.uow.take_events()] == [ContactBlocked, ContactUnblocked]
    assert chat.tables.blocks == {}


async def test_after_an_unblock_the_pair_may_talk_again(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    await chat.blocks.block(ann, bob)
    request = CreateConversationRequest(participant_ids=[bob])

    with pytest.raises(InvalidInput):
        await chat.service.create_conversation(ann, request, "token")
    await chat.blocks.unblock(ann, bob)
    view, created = await chat.service.create_conversation(ann, request, "token")

    assert created
    assert view.type == "direct"
