"""The audit's verdict on made-up outcomes: each kind of failure is counted where it belongs."""

from __future__ import annotations

import uuid
from typing import Any

from chaos.audit import judge
from chaos.load import Device, Send, User

CONVERSATION = str(uuid.uuid4())
SENDER = str(uuid.uuid4())


def stored(seq: int, client_id: str) -> dict[str, Any]:
    return {"id": f"m{seq}", "seq": seq, "senderId": SENDER, "clientMessageId": client_id}


def acked(seq: int, client_id: str) -> Send:
    send = Send(client_id, CONVERSATION, SENDER, "socket", first_at=0.0)
    send.acked({"seq": seq, "id": f"m{seq}"})
    return send


def device(*held: int) -> Device:
    user = User(id=SENDER, token="t", conversations=[CONVERSATION])
    made = Device(user, "127.0.0.2", "http://127.0.0.1:1")
    made.held[CONVERSATION] = set(held)
    return made


def test_everything_acked_stored_and_held_passes() -> None:
    verdict = judge(
        [acked(1, "a"), acked(2, "b")],
        {CONVERSATION: [stored(1, "a"), stored(2, "b")]},
        [device(1, 2)],
    )
    assert verdict.passed
    assert (verdict.acked, verdict.stored, verdict.problems) == (2, 2, [])


def test_an_acked_message_missing_from_storage_is_lost() -> None:
    verdict = judge([acked(1, "a"), acked(2, "b")], {CONVERSATION: [stored(1, "a")]}, [device(1)])
    assert (verdict.lost, verdict.passed) == (1, False)


def test_a_client_message_id_stored_twice_is_a_duplicate_and_a_gap_is_out_of_order() -> None:
    twice = {CONVERSATION: [stored(1, "a"), stored(3, "a")]}
    verdict = judge([acked(1, "a")], twice, [device(1, 3)])
    assert verdict.duplicated == 1
    assert verdict.out_of_order == 1
    assert not verdict.passed


def test_a_device_without_a_stored_message_has_it_undelivered() -> None:
    verdict = judge(
        [acked(1, "a"), acked(2, "b")],
        {CONVERSATION: [stored(1, "a"), stored(2, "b")]},
        [device(1, 2), device(1)],
    )
    assert verdict.undelivered == 1
    assert not verdict.passed


def test_the_same_message_twice_on_one_connection_is_a_duplicate() -> None:
    twice = device(1)
    twice.duplicates = 1
    verdict = judge([acked(1, "a")], {CONVERSATION: [stored(1, "a")]}, [twice])
    assert (verdict.duplicated, verdict.passed) == (1, False)


def test_a_send_never_answered_is_unacked_and_fails() -> None:
    pending = Send("c", CONVERSATION, SENDER, "rest", first_at=0.0)
    verdict = judge([pending], {CONVERSATION: []}, [device()])
    assert (verdict.unacked, verdict.passed) == (1, False)
