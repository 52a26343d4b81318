"""Socket payloads decode strictly from parsed JSON; acks have the documented shapes."""

from typing import Any

import msgspec
import pytest

from contracts import (
    CLIENT_PAYLOADS,
    SERVER_PAYLOADS,
    ClientEvent,
    ContractError,
    MessageSendPayload,
    PresenceGetPayload,
    SyncPayload,
    TypingPayload,
    WireStruct,
    ack_error,
    ack_ok,
    decode_socket_payload,
)
from contracts.examples import (
    CONVERSATION,
    EVENT_EXAMPLES,
    MESSAGE_VIEW,
    SOCKET_EXAMPLES,
)
from contracts.schema_export import socket_payload_types
from contracts.sockets import CLIENT_ACKS, Done, MessageSent, SyncConversation, Synced

EXAMPLES: dict[type[WireStruct], WireStruct] = {
    **{type(example): example for example in EVENT_EXAMPLES.values()},
    **SOCKET_EXAMPLES,
}


def as_client_json(payload: WireStruct) -> Any:
    """What python-socketio hands a handler: parsed JSON."""
    return msgspec.json.decode(msgspec.json.encode(payload))


def rejection(payload_type: type[WireStruct], data: object) -> str:
    with pytest.raises(ContractError) as caught:
        decode_socket_payload(payload_type, data)
    return str(caught.value)


@pytest.mark.parametrize("payload_type", socket_payload_types(), ids=lambda t: t.__name__)
def test_socket_payload_round_trips(payload_type: type[WireStruct]) -> None:
    example = EXAMPLES[payload_type]
    assert decode_socket_payload(payload_type, as_client_json(example)) == example


def test_every_client_event_has_a_payload_type() -> None:
    assert set(CLIENT_PAYLOADS) == set(ClientEvent)
    assert all(isinstance(event, str) for event in SERVER_PAYLOADS)


def test_message_send_is_camel_case_on_the_wire() -> None:
    data = {"conversationId": str(CONVERSATION), "content": "hi", "clientMessageId": "c-1"}
    payload = decode_socket_payload(MessageSendPayload, data)
    assert payload.conversation_id == CONVERSATION
    assert payload.attachments == []


def test_unknown_field_is_rejected() -> None:
    data = {"conversationId": str(CONVERSATION), "room": "x"}
    assert "unknown field `room` - at `$`" in rejection(TypingPayload, data)


def test_wrong_type_is_rejected() -> None:
    data = {"conversationId": str(CONVERSATION), "content": 5, "clientMessageId": "c-1"}
    assert "Expected `str`, got `int` - at `$.content`" in rejection(MessageSendPayload, data)


def test_bad_uuid_is_rejected() -> None:
    assert "Invalid UUID - at `$.conversationId`" in rejection(
        TypingPayload, {"conversationId": "room-1"}
    )


def test_missing_field_is_rejected() -> None:
    data = {"conversationId": str(CONVERSATION), "content": "hi"}
    assert "missing required field `clientMessageId`" in rejection(MessageSendPayload, data)


def test_too_long_content_and_client_message_id_are_rejected() -> None:
    base = {"conversationId": str(CONVERSATION), "content": "hi", "clientMessageId": "c-1"}
    assert "- at `$.content`" in rejection(MessageSendPayload, base | {"content": "x" * 16001})
    assert "- at `$.clientMessageId`" in rejection(
        MessageSendPayload, base | {"clientMessageId": "x" * 65}
    )


def test_non_object_payload_is_rejected() -> None:
    assert "Expected `object`, got `str` - at `$`" in rejection(TypingPayload, "conv")


def test_sync_rejects_bad_keys_and_negative_seq() -> None:
    assert "Invalid UUID - at `key` in `$.since`" in rejection(SyncPayload, {"since": {"x": 1}})
    assert ">= 0 - at `$.since[...]`" in rejection(SyncPayload, {"since": {str(CONVERSATION): -1}})


def test_presence_get_is_capped_at_200_users() -> None:
    user_ids = [str(CONVERSATION)] * 201
    assert "length <= 200 - at `$.userIds`" in rejection(PresenceGetPayload, {"userIds": user_ids})


def test_ack_ok_is_json_ready_camel_case() -> None:
    ack = ack_ok(MessageSent(message=MESSAGE_VIEW))
    assert ack["ok"] is True
    assert ack["message"]["conversationId"] == str(CONVERSATION)
    assert ack["message"]["createdAt"] == "2025-01-01T12:00:00Z"


def test_every_success_ack_says_ok_true() -> None:
    assert ack_ok(Done()) == {"ok": True}
    assert ack_ok(Synced(conversations={}, not_found=[]))["ok"] is True


def test_sync_ack_leaves_out_the_parts_not_asked_for() -> None:
    only_changes = SyncConversation(changes=[], last_change_seq=0, has_more_changes=False)
    ack = ack_ok(Synced(conversations={CONVERSATION: only_changes}, not_found=[]))
    assert ack["conversations"] == {
        str(CONVERSATION): {"changes": [], "lastChangeSeq": 0, "hasMoreChanges": False}
    }


def test_every_client_event_has_a_success_ack() -> None:
    assert set(CLIENT_ACKS) == set(ClientEvent)


def test_ack_error_shape() -> None:
    assert ack_error("rate_limited", "slow down") == {
        "ok": False,
        "error": {"code": "rate_limited", "message": "slow down"},
    }
