"""Who may do what to a conversation, on fakes: direct and group rules, renames, adding and
removing participants, roles, the handover of a group its owner leaves, and the events each
change commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

import pytest

from chat.api import CreateConversationRequest
from contracts.events import (
    ConversationCreated,
    ConversationMemberAdded,
    ConversationMemberRemoved,
    ConversationMemberUpdated,
    ConversationUpdated,
)
from contracts.wire import Event
from servicekit.problems import problem_for
from servicekit.refusals import Conflict, Forbidden, InvalidInput, NotFound, TooMany
from services.chat.tests.unit.fake_stores import FakeChat


@pytest.fixture
def chat() -> FakeChat:
    return FakeChat()


def roles(chat: FakeChat, conversation_id: uuid.UUID) -> dict[uuid.UUID, str]:
    return {user: entry.role for user, entry in chat.tables.members(conversation_id).items()}


def role_changes(events: Sequence[Event]) -> list[tuple[uuid.UUID, str]]:
    changed = [e for e in events if isinstance(e, ConversationMemberUpdated)]
    assert len(changed) == len(events)
    return [(e.user_id, e.role) for e in changed]


# --- creating -------------------------------------------------------------------------------


async def test_a_group_is_owned_by_its_creator_and_announced_once(chat: FakeChat) -> None:
    ann, bob, cid = chat.user("ann"), chat.user("bob"), chat.user("cid")

    view, created = await chat.service.create_conversation(
        ann, CreateConversationRequest(participant_ids=[bob, cid, bob], title="Trip"), "token"
    )

    assert created
    assert view.type == "group"
    assert roles(chat, view.id) == {ann: "owner", bob: "member", cid: "member"}
    [event] = chat.uow.take_events()
    assert isinstance(event, ConversationCreated)
    assert event.participant_ids == [ann, bob, cid]
    assert chat.creations.charged == [ann]


async def test_a_direct_pair_is_opened_once_and_reopening_it_is_free(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    first, created = await chat.service.create_conversation(
        ann, CreateConversationRequest(participant_ids=[bob]), "token"
    )
    chat.uow.take_events()

    again, created_again = await chat.service.create_conversation(
        bob, CreateConversationRequest(participant_ids=[ann], type="direct"), "token"
    )

    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert roles(chat, first.id) == {ann: "member", bob: "member"}
    assert chat.uow.take_events() == []
    assert chat.creations.charged == [ann]


@pytest.mark.parametrize(
    ("kind", "others", "title", "field"),
    [
        ("direct", 2, None, "participantIds"),
        ("direct", 1, "Us", "title"),
        ("group", 0, None, "participantIds"),
    ],
    ids=["direct with two others", "direct with a title", "nobody but the creator"],
)
async def test_a_direct_conversation_has_one_other_person_and_no_title(
    chat: FakeChat, kind: Literal["direct", "group"], others: int, title: str | None, field: str
) -> None:
    ann = chat.user("ann")
    named = [chat.user(f"user{n}") for n in range(others)]
    request = CreateConversationRequest(participant_ids=named or [ann], type=kind, title=title)

    with pytest.raises(InvalidInput) as refused:
        await chat.service.create_conversation(ann, request, "token")

    assert [error.field for error in refused.value.errors or []] == [field]
    assert chat.uow.commits == 0


async def test_unknown_users_and_those_who_blocked_the_creator_read_alike(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    chat.tables.blocks[bob, ann] = chat.clock()
    stranger = uuid.uuid4()

    with pytest.raises(InvalidInput) as refused:
        await chat.service.create_conversation(
            ann, CreateConversationRequest(participant_ids=[bob, stranger]), "token"
        )

    [error] = refused.value.errors or []
    assert error.field == "participantIds"
    assert error.message == f"unknown users: {sorted([str(bob), str(stranger)])}"
    assert chat.uow.events == []


async def test_someone_the_creator_blocked_must_be_unblocked_first(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    chat.tables.blocks[ann, bob] = chat.clock()

    with pytest.raises(InvalidInput) as refused:
        await chat.service.create_conversation(
            ann, CreateConversationRequest(participant_ids=[bob]), "token"
        )

    [error] = refused.value.errors or []
    assert error.message == f"you blocked: {[str(bob)]}; unblock first"


async def test_a_user_auth_knows_but_chat_has_not_heard_of_yet_can_be_named(
    chat: FakeChat,
) -> None:
    ann, newcomer = chat.user("ann"), uuid.uuid4()
    chat.directory.known[newcomer] = "newcomer"

    view, _ = await chat.service.create_conversation(
        ann, CreateConversationRequest(participant_ids=[newcomer]), "token"
    )

    assert set(roles(chat, view.id)) == {ann, newcomer}


async def test_over_the_creation_limit_nothing_is_created(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    chat.creations.exhausted = True

    with pytest.raises(TooMany) as refused:
        await chat.service.create_conversation(
            ann, CreateConversationRequest(participant_ids=[bob]), "token"
        )

    assert problem_for(refused.value).headers == {"Retry-After": "30"}
    assert chat.tables.conversations == {}
    assert (chat.uow.commits, chat.uow.rollbacks) == (0, 1)


# --- renaming -------------------------------------------------------------------------------


async def test_owners_and_admins_rename_a_group_members_do_not(chat: FakeChat) -> None:
    ann, bob, cid = chat.user("ann"), chat.user("bob"), chat.user("cid")
    group = await chat.group(ann, bob, cid)
    await chat.service.set_role(ann, group, bob, "admin")
    chat.uow.take_events()

    with pytest.raises(Forbidden) as refused:
        await chat.service.rename(cid, group, "Mine")
    view = await chat.service.rename(bob, group, "Ours")

    assert refused.value.detail == "Only owners and admins rename a conversation"
    assert view.title == "Ours"
    [event] = chat.uow.take_events()
    assert isinstance(event, ConversationUpdated)
    assert (event.title, event.updated_by) == ("Ours", bob)
    assert event.change_seq == len(chat.changes.kept[group])  # numbered in the change log


async def test_a_direct_conversation_has_no_title_to_rename(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)

    with pytest.raises(Conflict) as refused:
        await chat.service.rename(ann, direct, "Us")

    answer = problem_for(refused.value)
    assert (answer.status, answer.title, answer.detail) == (
        409,
        "Conflict",
        "A direct conversation has no title",
    )


async def test_someone_outside_a_conversation_is_told_it_does_not_exist(chat: FakeChat) -> None:
    ann, bob, eve = chat.user("ann"), chat.user("bob"), chat.user("eve")
    group = await chat.group(ann, bob)

    with pytest.raises(NotFound) as refused:
        await chat.service.rename(eve, group, "Taken over")

    assert refused.value.detail == "No such conversation"


# --- adding and removing ----------------------------------------------------------------------


async def test_admins_add_participants_members_do_not(chat: FakeChat) -> None:
    ann, bob, cid, dan = chat.user("ann"), chat.user("bob"), chat.user("cid"), chat.user("dan")
    group = await chat.group(ann, bob)

    with pytest.raises(Forbidden):
        await chat.service.add_participants(bob, group, [cid], "token")
    await chat.service.add_participants(ann, group, [cid, dan, bob], "token")

    events = chat.uow.take_events()
    added = [e for e in events if isinstance(e, ConversationMemberAdded)]
    assert len(added) == len(events)
    assert [e.user_id for e in added] == [cid, dan]  # bob was in already: nothing for him
    snapshots = [e.conversation for e in added]
    assert all(s is not None and set(s.participant_ids) == {ann, bob, cid, dan} for s in snapshots)


async def test_nobody_joins_a_direct_conversation(chat: FakeChat) -> None:
    ann, bob, cid = chat.user("ann"), chat.user("bob"), chat.user("cid")
    direct = await chat.direct(ann, bob)

    with pytest.raises(Conflict, match="A direct conversation has two people"):
        await chat.service.add_participants(ann, direct, [cid], "token")


async def test_a_member_may_leave_but_not_remove_others(chat: FakeChat) -> None:
    ann, bob, cid = chat.user("ann"), chat.user("bob"), chat.user("cid")
    group = await chat.group(ann, bob, cid)

    with pytest.raises(Forbidden, match="Only owners and admins remove others"):
        await chat.service.remove_participant(bob, group, cid)
    await chat.service.remove_participant(bob, group, bob)

    [event] = chat.uow.take_events()
    assert isinstance(event, ConversationMemberRemoved)
    assert (event.user_id, event.by) == (bob, bob)
    assert set(roles(chat, group)) == {ann, cid}


async def test_an_admin_removes_members_but_no_other_admin_nor_the_owner(chat: FakeChat) -> None:
    ann, bob, cid, dan = chat.user("ann"), chat.user("bob"), chat.user("cid"), chat.user("dan")
    group = await chat.group(ann, bob, cid, dan)
    await chat.service.set_role(ann, group, bob, "admin")
    await chat.service.set_role(ann, group, cid, "admin")

    for protected in (ann, cid):
        with pytest.raises(Forbidden, match="Only an owner removes an owner or an admin"):
            await chat.service.remove_participant(bob, group, protected)
    await chat.service.remove_participant(bob, group, dan)

    assert set(roles(chat, group)) == {ann, bob, cid}


async def test_removing_someone_who_is_not_in_the_group_is_not_found(chat: FakeChat) -> None:
    ann, bob, eve = chat.user("ann"), chat.user("bob"), chat.user("eve")
    group = await chat.group(ann, bob)

    with pytest.raises(NotFound, match="Not a participant"):
        await chat.service.remove_participant(ann, group, eve)


async def test_nobody_leaves_a_direct_conversation(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)

    with pytest.raises(Conflict, match="Nobody leaves a direct conversation"):
        await chat.service.remove_participant(ann, direct, ann)


async def test_an_owner_leaving_hands_the_group_to_its_longest_standing_admin(
    chat: FakeChat,
) -> None:
    ann, bob, cid, dan = chat.user("ann"), chat.user("bob"), chat.user("cid"), chat.user("dan")
    group = await chat.group(ann, bob, cid, dan)
    await chat.service.set_role(ann, group, dan, "admin")
    await chat.service.set_role(ann, group, cid, "admin")
    chat.uow.take_events()

    await chat.service.remove_participant(ann, group, ann)

    removed, promoted = chat.uow.take_events()
    assert isinstance(removed, ConversationMemberRemoved)
    assert isinstance(promoted, ConversationMemberUpdated)
    # cid joined before dan: seniority counts, not when the admin role came
    assert (promoted.user_id, promoted.role, promoted.by) == (cid, "owner", ann)
    assert promoted.change_seq == removed.change_seq + 1
    assert roles(chat, group) == {bob: "member", cid: "owner", dan: "admin"}


async def test_without_admins_the_longest_standing_member_inherits(chat: FakeChat) -> None:
    ann, bob, cid = chat.user("ann"), chat.user("bob"), chat.user("cid")
    group = await chat.group(ann, bob, cid)

    await chat.service.remove_participant(ann, group, ann)

    assert roles(chat, group) == {bob: "owner", cid: "member"}


async def test_a_deleted_account_leaves_its_groups_inside_the_consumers_transaction(
    chat: FakeChat,
) -> None:
    ann, bob, cid = chat.user("ann"), chat.user("bob"), chat.user("cid")
    first, second = await chat.group(ann, bob), await chat.group(cid, ann)
    direct = await chat.direct(ann, cid)
    inbox_transaction = object()

    await chat.service.forget_user(inbox_transaction, ann, chat.clock())

    changes: dict[uuid.UUID, list[tuple[str, uuid.UUID]]] = {}
    for event in chat.uow.take_events():
        assert isinstance(event, ConversationMemberRemoved | ConversationMemberUpdated)
        changes.setdefault(event.conversation_id, []).append((event.event_type, event.user_id))
    assert changes == {
        first: [("conversation.member_removed", ann), ("conversation.member_updated", bob)],
        second: [("conversation.member_removed", ann)],
    }
    assert roles(chat, first) == {bob: "owner"}  # bob inherits the group ann owned
    assert roles(chat, second) == {cid: "owner"}
    assert set(roles(chat, direct)) == {ann, cid}  # a direct conversation keeps its history
    assert chat.tables.users[ann].deleted


# --- roles ----------------------------------------------------------------------------------


async def test_an_owner_grants_and_revokes_admin(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    group = await chat.group(ann, bob)

    await chat.service.set_role(ann, group, bob, "admin")
    await chat.service.set_role(ann, group, bob, "admin")  # already: nothing changes
    await chat.service.set_role(ann, group, bob, "member")

    assert role_changes(chat.uow.take_events()) == [(bob, "admin"), (bob, "member")]


async def test_handing_ownership_over_leaves_the_old_owner_an_admin(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    group = await chat.group(ann, bob)

    view = await chat.service.set_role(ann, group, bob, "owner")

    assert role_changes(chat.uow.take_events()) == [(bob, "owner"), (ann, "admin")]
    assert {p.user_id: p.role for p in view.participants} == {ann: "admin", bob: "owner"}


async def test_an_owner_cannot_demote_themself(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    group = await chat.group(ann, bob)

    with pytest.raises(Conflict, match="Hand ownership to someone else instead"):
        await chat.service.set_role(ann, group, ann, "admin")
    await chat.service.set_role(ann, group, ann, "owner")  # what already is: a no-op

    assert chat.uow.take_events() == []
    assert roles(chat, group)[ann] == "owner"


async def test_only_an_owner_changes_roles(chat: FakeChat) -> None:
    ann, bob, cid = chat.user("ann"), chat.user("bob"), chat.user("cid")
    group = await chat.group(ann, bob, cid)
    await chat.service.set_role(ann, group, bob, "admin")

    with pytest.raises(Forbidden, match="Only an owner changes roles"):
        await chat.service.set_role(bob, group, cid, "admin")
    with pytest.raises(NotFound, match="Not a participant"):
        await chat.service.set_role(ann, group, uuid.uuid4(), "admin")


async def test_a_direct_conversation_has_no_roles(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)

    with pytest.raises(Conflict, match="A direct conversation has no roles"):
        await chat.service.set_role(ann, direct, bob, "admin")
