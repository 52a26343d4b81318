"""The send path, edits, deletes and read markers, on fakes: idempotency by clientMessageId,
who a message notifies, the queue's answers to refused and repeated sends, who edits and
deletes, and markers that only move forward."""

from __future__ import annotations

import uuid

import pytest

from chat.consumers import MessageSendConsumer
from chat.domain import ReadMarker, advanced_read_seq
from chat.service import SendCommand, Sent
from contracts import make_envelope
from contracts.events import (
    ConversationEngaged,
    MessageAlreadyStored,
    MessageCreated,
    MessageDeleted,
    MessageRead,
    MessageRefused,
    MessageSend,
    MessageUpdated,
    NotificationRequested,
)
from servicekit.problems import problem_for
from servicekit.refusals import Conflict, Forbidden, InvalidInput, NotFound, Refusal
from services.chat.tests.unit.fake_stores import INLINE_BODY_BYTES, FakeChat


@pytest.fixture
def chat() -> FakeChat:
    return FakeChat()


def command(
    sender: uuid.UUID, conversation_id: uuid.UUID, content: str, client_id: str | None = None
) -> SendCommand:
    return SendCommand(
        conversation_id=conversation_id,
        sender_id=sender,
        content=content,
        client_message_id=client_id,
        attachments=[],
    )


# --- sending --------------------------------------------------------------------------------


async def test_a_first_message_is_numbered_announced_and_engages_its_sender(
    chat: FakeChat,
) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)

    first = await chat.send(bob, direct, "hi", "c-1")
    second = await chat.send(bob, direct, "there", "c-2")

    assert (first.message.seq, second.message.seq) == (1, 2)
    assert first.created
    kinds = [type(e) for e in chat.uow.take_events()]
    assert kinds == [
        MessageCreated,
        ConversationEngaged,  # bob takes part for the first time
        NotificationRequested,
        MessageCreated,
        NotificationRequested,
    ]
    assert chat.tables.members(direct)[bob].last_read_seq == 2  # a sender has read their own


async def test_resending_a_client_message_id_returns_the_stored_message(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)
    stored = await chat.send(ann, direct, "once", "c-1")
    chat.uow.take_events()

    again = await chat.send(ann, direct, "once, retried", "c-1")

    assert not again.created
    assert again.message == stored.message
    assert chat.uow.take_events() == []
    assert chat.tables.conversations[direct].last_seq == 1


async def test_a_client_message_id_used_in_another_conversation_conflicts(chat: FakeChat) -> None:
    ann, bob, cid = chat.user("ann"), chat.user("bob"), chat.user("cid")
    direct, group = await chat.direct(ann, bob), await chat.group(ann, cid)
    await chat.send(ann, direct, "here", "c-1")

    with pytest.raises(Conflict) as refused:
        await chat.send(ann, group, "and there", "c-1")

    answer = problem_for(refused.value)
    assert (answer.status, answer.title, answer.detail) == (
        409,
        "Conflict",
        "clientMessageId already used",
    )


async def test_a_client_message_id_stored_meanwhile_by_another_send_conflicts(
    chat: FakeChat,
) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)
    chat.tables.taken_meanwhile.add((ann, "c-1"))

    with pytest.raises(Conflict, match="clientMessageId already used"):
        await chat.send(ann, direct, "raced", "c-1")

    assert chat.uow.rollbacks == 1
    assert chat.uow.events == []


async def test_only_participants_write_and_never_across_a_block(chat: FakeChat) -> None:
    ann, bob, eve = chat.user("ann"), chat.user("bob"), chat.user("eve")
    direct = await chat.direct(ann, bob)

    with pytest.raises(NotFound, match="No such conversation"):
        await chat.send(eve, direct, "let me in", None)
    await chat.blocks.block(bob, ann)
    with pytest.raises(Forbidden) as barred:
        await chat.send(ann, direct, "still there?", None)

    assert problem_for(barred.value).title == "Forbidden"
    assert barred.value.detail.startswith("This conversation no longer accepts messages")


async def test_text_a_conversation_cannot_hold_is_invalid(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)

    with pytest.raises(InvalidInput) as refused:
        await chat.send(ann, direct, "NUL \x00 inside", None)

    assert [e.field for e in refused.value.errors or []] == ["content"]


async def test_a_group_message_notifies_the_mentioned_and_who_wants_all_never_the_sender(
    chat: FakeChat,
) -> None:
    ann, bob, cid, dan = chat.user("ann"), chat.user("bob"), chat.user("cid"), chat.user("dan")
    group = await chat.group(ann, bob, cid, dan)
    await chat.service.set_notification_level(cid, group, "all")
    await chat.service.set_notification_level(ann, group, "all")
    await chat.service.set_notification_level(dan, group, "none")

    await chat.send(ann, group, "@Bob and @dan, see @ann's note", None)

    [request] = [e for e in chat.uow.take_events() if isinstance(e, NotificationRequested)]
    assert request.mentioned_ids == [bob]  # dan muted the group; ann is the sender
    assert request.notify_ids == [cid]


async def test_a_group_message_naming_nobody_requests_no_notification(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    group = await chat.group(ann, bob)

    await chat.send(ann, group, "morning all", None)

    assert not any(isinstance(e, NotificationRequested) for e in chat.uow.take_events())


async def test_a_long_body_is_kept_outside_the_message_row(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)
    text = "x" * (INLINE_BODY_BYTES + 1)

    sent = await chat.send(ann, direct, text, None)

    stored = chat.tables.messages[sent.message.id]
    assert (stored.content, stored.body_in_mongo) == (None, True)
    assert chat.bodies.bodies[sent.message.id] == text
    assert sent.message.content == text


async def test_the_queue_answers_each_refused_or_repeated_send_and_stores_the_rest(
    chat: FakeChat,
) -> None:
    ann, bob, eve = chat.user("ann"), chat.user("bob"), chat.user("eve")
    direct, group = await chat.direct(ann, bob), await chat.group(ann, eve)
    await chat.send(ann, direct, "earlier", "used")
    chat.uow.take_events()
    attachment = uuid.uuid4()
    chat.attachments.pending.add(attachment)
    with_attachment = SendCommand(
        conversation_id=direct,
        sender_id=ann,
        content="see this",
        client_message_id="pending-media",
        attachments=[attachment],
    )

    outcomes = await chat.service.send_all(
        [
            command(ann, direct, "new", "fresh"),
            command(eve, direct, "not mine", "outsider"),
            command(ann, group, "elsewhere", "used"),
            command(ann, direct, "earlier, again", "used"),
            command(ann, direct, "bad \x00", "nul"),
            with_attachment,
            command(bob, direct, "no id, no answer", None),
        ]
    )

    assert [o.created if isinstance(o, Sent) else type(o) for o in outcomes] == [
        True,
        NotFound,
        Conflict,
        False,
        InvalidInput,
        InvalidInput,
        True,
    ]
    answers = {
        e.client_message_id: e.code for e in chat.uow.events if isinstance(e, MessageRefused)
    }
    assert answers == {
        "outsider": "not_found",
        "used": "conflict",
        "nul": "invalid",
        "pending-media": "invalid",
    }
    [repeat] = [e for e in chat.uow.events if isinstance(e, MessageAlreadyStored)]
    assert repeat.message.content == "earlier"
    created = [e.message.content for e in chat.uow.events if isinstance(e, MessageCreated)]
    assert created == ["new", "no id, no answer"]


async def test_the_queue_consumer_takes_a_refusal_as_an_answer_not_a_failure(
    chat: FakeChat,
) -> None:
    ann, bob, eve = chat.user("ann"), chat.user("bob"), chat.user("eve")
    direct = await chat.direct(ann, bob)
    await chat.blocks.block(bob, ann)
    chat.uow.take_events()
    sends = [
        MessageSend(
            conversation_id=direct,
            sender_id=sender,
            content="hi",
            client_message_id=client_id,
            sent_at=chat.clock(),
        )
        for sender, client_id in ((ann, "a"), (eve, "e"))
    ]

    await MessageSendConsumer(chat.service).handle_batch(
        [make_envelope(send, producer="gateway") for send in sends]
    )

    refused = [e for e in chat.uow.take_events() if isinstance(e, MessageRefused)]
    assert [(e.client_message_id, e.code) for e in refused] == [
        ("a", "forbidden"),
        ("e", "not_found"),
    ]


# --- edits and deletes ----------------------------------------------------------------------


async def test_only_the_sender_edits_a_message_and_everyone_hears_of_it(chat: FakeChat) -> None:
    ann, bob, cid = chat.user("ann"), chat.user("bob"), chat.user("cid")
    group = await chat.group(ann, bob, cid)
    sent = await chat.send(bob, group, "draft", None)
    chat.uow.take_events()

    with pytest.raises(Forbidden, match="Only the sender edits a message"):
        await chat.service.edit(ann, group, sent.message.id, "owner's words")
    edited = await chat.service.edit(bob, group, sent.message.id, "final")

    assert edited.content == "final"
    assert edited.edited_at is not None
    [event] = chat.uow.take_events()
    assert isinstance(event, MessageUpdated)
    assert set(event.recipient_ids) == {ann, bob, cid}
    assert event.message.change_seq == len(chat.changes.kept[group])


async def test_a_deleted_message_is_not_edited(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)
    sent = await chat.send(ann, direct, "oops", None)
    await chat.service.delete(ann, direct, sent.message.id)

    with pytest.raises(Conflict, match="The message was deleted"):
        await chat.service.edit(ann, direct, sent.message.id, "fixed")


async def test_a_message_is_deleted_by_its_sender_or_a_manager_not_by_others(
    chat: FakeChat,
) -> None:
    ann, bob, cid = chat.user("ann"), chat.user("bob"), chat.user("cid")
    group = await chat.group(ann, bob, cid)
    by_bob = await chat.send(bob, group, "mine", None)
    by_cid = await chat.send(cid, group, "also mine", None)
    chat.uow.take_events()

    with pytest.raises(Forbidden, match="Only the sender or an owner or admin deletes"):
        await chat.service.delete(bob, group, by_cid.message.id)
    await chat.service.delete(bob, group, by_bob.message.id)
    await chat.service.delete(ann, group, by_cid.message.id)  # the owner moderates

    deleted = chat.uow.take_events()
    assert [(e.message_id, e.deleted_by) for e in deleted if isinstance(e, MessageDeleted)] == [
        (by_bob.message.id, bob),
        (by_cid.message.id, ann),
    ]
    assert len(deleted) == 2


async def test_deleting_twice_announces_once_and_drops_an_edited_text(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)
    sent = await chat.send(ann, direct, "short", None)
    await chat.service.edit(ann, direct, sent.message.id, "y" * (INLINE_BODY_BYTES + 1))
    chat.uow.take_events()

    await chat.service.delete(ann, direct, sent.message.id)
    await chat.service.delete(ann, direct, sent.message.id)

    assert [type(e) for e in chat.uow.take_events()] == [MessageDeleted]
    assert chat.changes.forgotten_edits == [sent.message.id]  # its edits no longer hold text
    assert sent.message.id not in chat.bodies.bodies


async def test_an_unknown_message_is_not_found(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)

    with pytest.raises(NotFound, match="No such message"):
        await chat.service.delete(ann, direct, uuid.uuid4())


# --- read markers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "asked", "expected"),
    [(3, 5, 5), (3, 1, 3), (3, 9, 7), (7, 7, 7)],
    ids=["forward", "never backwards", "never past the newest", "where it is"],
)
def test_a_read_marker_moves_forward_only_up_to_the_newest_message(
    marker: int, asked: int, expected: int
) -> None:
    assert advanced_read_seq(ReadMarker(marker, last_seq=7, engaged=True), asked) == expected


async def test_reading_back_leaves_the_marker_and_announces_nothing(chat: FakeChat) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)
    await chat.service.accept(bob, direct)
    for n in range(4):
        await chat.send(ann, direct, f"m{n}", None)
    chat.uow.take_events()

    forward = await chat.service.mark_read(bob, direct, 3)
    backward = await chat.service.mark_read(bob, direct, 1)
    beyond = await chat.service.mark_read(bob, direct, 40)

    assert [(r.last_read_seq, r.unread_count) for r in (forward, backward, beyond)] == [
        (3, 1),
        (3, 1),
        (4, 0),
    ]
    reads = chat.uow.take_events()
    assert [e.seq for e in reads if isinstance(e, MessageRead)] == [3, 4]
    assert len(reads) == 2


async def test_a_reader_who_has_not_taken_part_reads_without_telling_anyone(
    chat: FakeChat,
) -> None:
    ann, bob = chat.user("ann"), chat.user("bob")
    direct = await chat.direct(ann, bob)
    await chat.send(ann, direct, "unsolicited", None)
    chat.uow.take_events()

    read = await chat.service.mark_read(bob, direct, 1)

    assert read.last_read_seq == 1
    assert chat.tables.members(direct)[bob].last_read_seq == 1
    assert chat.uow.take_events() == []


async def test_only_a_participant_has_a_read_marker(chat: FakeChat) -> None:
    ann, bob, eve = chat.user("ann"), chat.user("bob"), chat.user("eve")
    direct = await chat.direct(ann, bob)

    with pytest.raises(NotFound):
        await chat.service.mark_read(eve, direct, 1)


def test_each_refusal_of_the_send_path_keeps_its_http_status() -> None:
    refusals: list[Refusal] = [
        NotFound("No such conversation"),
        Forbidden("barred"),
        Conflict("clientMessageId already used"),
        InvalidInput([]),
    ]
    assert [problem_for(r).status for r in refusals] == [404, 403, 409, 422]
