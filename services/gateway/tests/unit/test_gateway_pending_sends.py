"""``PendingSends``: the futures ``message:send`` acks wait on until ``message.created``."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from contracts.events import MessageRefused
from devstack.stored_messages import stored_message
from devstack.waiting import until
from gateway.pending_sends import PendingSends, SendRefusedError


async def test_stored_resolves_the_expected_future_with_the_message() -> None:
    pending = PendingSends()
    sender = uuid.uuid4()
    future = pending.expect(sender, "c-1")
    assert not future.done()

    view = stored_message(sender, uuid.uuid4(), "c-1")
    pending.stored(view)

    assert future.done()
    assert await asyncio.wait_for(future, 1) is view


async def test_a_resend_while_waiting_shares_the_first_future() -> None:
    pending = PendingSends()
    sender = uuid.uuid4()
    first = pending.expect(sender, "c-1")
    resend = pending.expect(sender, "c-1")
    assert resend is first

    view = stored_message(sender, uuid.uuid4(), "c-1")
    pending.stored(view)
    assert first.result() is view
    assert resend.result() is view


async def test_the_wait_is_keyed_by_sender_and_client_message_id() -> None:
    pending = PendingSends()
    alice, bob = uuid.uuid4(), uuid.uuid4()
    alices = pending.expect(alice, "same-id")
    bobs = pending.expect(bob, "same-id")
    other = pending.expect(alice, "other-id")
    assert len({id(alices), id(bobs), id(other)}) == 3

    view = stored_message(bob, uuid.uuid4(), "same-id")
    pending.stored(view)
    assert bobs.result() is view
    assert not alices.done()
    assert not other.done()


async def test_stored_for_an_unknown_key_is_harmless() -> None:
    pending = PendingSends()
    sender = uuid.uuid4()
    waiting = pending.expect(sender, "c-1")

    pending.stored(stored_message(sender, uuid.uuid4(), "never-expected"))
    pending.stored(stored_message(uuid.uuid4(), uuid.uuid4(), "c-1"))
    pending.stored(stored_message(sender, uuid.uuid4(), None))  # sent over REST: no clientMessageId

    assert not waiting.done()


async def test_a_second_stored_of_the_same_message_is_harmless() -> None:
    pending = PendingSends()
    sender = uuid.uuid4()
    future = pending.expect(sender, "c-1")
    first = stored_message(sender, uuid.uuid4(), "c-1")
    pending.stored(first)
    pending.stored(stored_message(sender, uuid.uuid4(), "c-1", seq=2))  # a redelivered copy
    assert future.result() is first


async def test_expect_after_the_message_was_stored_waits_afresh() -> None:
    pending = PendingSends()
    sender = uuid.uuid4()
    first = pending.expect(sender, "c-1")
    pending.stored(stored_message(sender, uuid.uuid4(), "c-1"))
    again = pending.expect(sender, "c-1")
    assert again is not first
    assert not again.done()


async def test_forget_drops_the_wait_so_a_late_stored_resolves_nothing() -> None:
    pending = PendingSends()
    sender = uuid.uuid4()
    forgotten = pending.expect(sender, "c-1")
    pending.forget(sender, "c-1")
    pending.forget(sender, "c-1")  # forgetting twice (or an unknown key) is harmless
    pending.forget(uuid.uuid4(), "unknown")

    fresh = pending.expect(sender, "c-1")
    assert fresh is not forgotten
    view = stored_message(sender, uuid.uuid4(), "c-1")
    pending.stored(view)
    assert fresh.result() is view
    assert not forgotten.done()


async def test_a_timed_out_wait_is_dropped_later_unless_replaced() -> None:
    pending = PendingSends()
    sender = uuid.uuid4()
    first = pending.expect(sender, "late")
    pending.forget_later(sender, "late", first, delay=0.05)
    # Dropped: expecting it again makes a new wait.
    await until(lambda: pending.expect(sender, "late") is not first, timeout=2, interval=0.01)

    current = pending.expect(sender, "again")
    stale = asyncio.get_running_loop().create_future()
    pending.forget_later(sender, "again", stale, delay=0.01)  # not the current wait: kept
    await asyncio.sleep(0.05)  # the stale drop has fired by now, and must have left it
    assert pending.expect(sender, "again") is current


async def test_a_refusal_fails_the_waiting_future_with_its_code_and_reason() -> None:
    pending = PendingSends()
    sender = uuid.uuid4()
    future = pending.expect(sender, "c-1")
    other = pending.expect(sender, "c-2")

    pending.refused(
        MessageRefused(
            conversation_id=uuid.uuid4(),
            sender_id=sender,
            client_message_id="c-1",
            code="invalid",
            detail="attachments[0]: unknown media",
        )
    )

    with pytest.raises(SendRefusedError) as refused:
        await asyncio.wait_for(future, 1)
    assert (refused.value.code, refused.value.detail) == (
        "invalid",
        "attachments[0]: unknown media",
    )
    assert not other.done()
