"""Every event round-trips through the real codec; anything off-contract is one ContractError."""

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import jsonschema
import msgspec
import pytest

from contracts import (
    EVENT_TYPES,
    ContractError,
    MessageSend,
    decode_envelope,
    encode_envelope,
    make_envelope,
    names,
)
from contracts.examples import AT, EVENT_EXAMPLES
from contracts.schema_export import render_documents

EVENT_ID = UUID("00000000-0000-4000-8000-0000000000e1")


def wire(routing_key: str) -> dict[str, Any]:
    """The example envelope of `routing_key` as parsed JSON, ready to be broken."""
    envelope = make_envelope(EVENT_EXAMPLES[routing_key], producer="test", trace_id="t-1")
    parsed: dict[str, Any] = json.loads(encode_envelope(envelope))
    return parsed


def rejection(document: object) -> str:
    with pytest.raises(ContractError) as caught:
        decode_envelope(json.dumps(document).encode())
    return str(caught.value)


@pytest.mark.parametrize("routing_key", names.ROUTING_KEYS)
def test_every_routing_key_has_a_payload_type(routing_key: str) -> None:
    assert EVENT_TYPES[routing_key].event_type == routing_key


@pytest.mark.parametrize("routing_key", list(EVENT_TYPES))
def test_every_payload_type_has_a_routing_key_and_an_example(routing_key: str) -> None:
    assert routing_key in names.ROUTING_KEYS
    assert type(EVENT_EXAMPLES[routing_key]) is EVENT_TYPES[routing_key]


def test_registry_and_routing_keys_are_the_same_set() -> None:
    assert set(EVENT_TYPES) == set(names.ROUTING_KEYS) == set(EVENT_EXAMPLES)
    assert len(names.ROUTING_KEYS) == len(set(names.ROUTING_KEYS))


@pytest.mark.parametrize("routing_key", list(EVENT_TYPES))
def test_event_round_trips_through_the_envelope(routing_key: str) -> None:
    envelope = make_envelope(
        EVENT_EXAMPLES[routing_key], producer="chat", event_id=EVENT_ID, occurred_at=AT
    )

    raw = encode_envelope(envelope)
    decoded = decode_envelope(raw)

    assert decoded == envelope
    assert type(decoded.data) is EVENT_TYPES[routing_key]
    assert decoded.type == routing_key
    assert decoded.version == EVENT_TYPES[routing_key].event_version
    assert b'"occurredAt"' in raw
    assert b'"traceId"' in raw
    assert b"_" not in b"".join(_keys(json.loads(raw)))


@pytest.mark.parametrize("routing_key", list(EVENT_TYPES))
def test_encoded_event_matches_its_published_json_schema(routing_key: str) -> None:
    schema = json.loads(render_documents()[f"events/{routing_key}.json"])
    jsonschema.validate(wire(routing_key), schema)


def test_wire_keys_are_camel_case() -> None:
    raw = encode_envelope(make_envelope(EVENT_EXAMPLES[names.MESSAGE_SEND], producer="gateway"))
    assert b'"conversationId"' in raw
    assert b'"clientMessageId"' in raw
    assert b"conversation_id" not in raw


def test_make_envelope_fills_id_time_and_trace() -> None:
    first = make_envelope(EVENT_EXAMPLES[names.USER_REGISTERED], producer="auth")
    second = make_envelope(EVENT_EXAMPLES[names.USER_REGISTERED], producer="auth")

    assert first.id != second.id
    assert first.trace_id != second.trace_id
    assert first.occurred_at.tzinfo is not None
    assert first.producer == "auth"


def test_make_envelope_refuses_a_naive_time() -> None:
    with pytest.raises(ContractError, match="timezone"):
        make_envelope(
            EVENT_EXAMPLES[names.USER_REGISTERED], producer="auth", occurred_at=datetime(2025, 1, 1)
        )


def test_unknown_type_is_rejected() -> None:
    document = wire(names.MESSAGE_SEND) | {"type": "message.teleported"}
    assert "unknown event type 'message.teleported' - at `$.type`" in rejection(document)


def test_unknown_field_in_data_is_rejected() -> None:
    document = wire(names.MESSAGE_SEND)
    document["data"]["priority"] = "high"
    assert "unknown field `priority` - at `$.data`" in rejection(document)


def test_unknown_field_in_envelope_is_rejected() -> None:
    document = wire(names.MESSAGE_SEND) | {"replyTo": "x"}
    assert "unknown field `replyTo` - at `$`" in rejection(document)


def test_wrong_type_is_rejected() -> None:
    document = wire(names.USER_REGISTERED)
    document["data"]["email"] = 42
    assert "Expected `str`, got `int` - at `$.data.email`" in rejection(document)


def test_missing_field_is_rejected() -> None:
    document = wire(names.USER_REGISTERED)
    del document["data"]["email"]
    assert "missing required field `email` - at `$.data`" in rejection(document)


def test_missing_type_is_rejected() -> None:
    document = wire(names.USER_REGISTERED)
    del document["type"]
    assert "missing required field `type` - at `$`" in rejection(document)


def test_content_too_long_is_rejected() -> None:
    document = wire(names.MESSAGE_SEND)
    document["data"]["content"] = "x" * 16001
    assert "length <= 16000 - at `$.data.content`" in rejection(document)


def test_blank_content_is_rejected() -> None:
    document = wire(names.MESSAGE_SEND)
    document["data"]["content"] = "  \n"
    assert "- at `$.data.content`" in rejection(document)


def test_time_without_offset_is_rejected() -> None:
    document = wire(names.MESSAGE_SEND) | {"occurredAt": "2025-01-01T12:00:00"}
    assert "timezone component - at `$.occurredAt`" in rejection(document)


def test_nested_wrong_type_names_the_path() -> None:
    document = wire(names.MESSAGE_CREATED)
    document["data"]["message"]["seq"] = 0
    assert ">= 1 - at `$.data.message.seq`" in rejection(document)


def test_other_version_is_rejected() -> None:
    document = wire(names.MESSAGE_SEND) | {"version": 2}
    assert "unsupported version 2 of 'message.send' (expected 1) - at `$.version`" in rejection(
        document
    )


@pytest.mark.parametrize("raw", [b"not json", b'{"type": "message.send"', b"", b"\xff\xfe"])
def test_non_json_bytes_are_rejected(raw: bytes) -> None:
    with pytest.raises(ContractError, match=r"JSON is malformed|Input data was truncated"):
        decode_envelope(raw)


def test_invalid_utf8_inside_a_string_is_a_contract_error() -> None:
    document = json.dumps(wire(names.MESSAGE_SEND)).encode().replace(b"Hello", b"He\xffllo")
    assert b"\xff" in document
    with pytest.raises(ContractError, match="not UTF-8"):
        decode_envelope(document)


def test_non_object_json_is_rejected() -> None:
    assert "Expected `object`, got `array` - at `$`" in rejection([1, 2])


def test_contract_error_is_a_value_error_chained_to_msgspec() -> None:
    with pytest.raises(ValueError, match="invalid envelope") as caught:
        decode_envelope(b"{}")
    assert isinstance(caught.value.__cause__, msgspec.ValidationError)


def test_decoded_payload_is_frozen() -> None:
    envelope = decode_envelope(
        encode_envelope(make_envelope(EVENT_EXAMPLES[names.MESSAGE_SEND], producer="g"))
    )
    assert isinstance(envelope.data, MessageSend)
    with pytest.raises(AttributeError):
        envelope.data.content = "changed"  # type: ignore[misc]
    assert envelope.occurred_at.tzinfo is not None
    assert envelope.data.sent_at == AT.astimezone(UTC)


def _keys(value: object) -> list[bytes]:
    if isinstance(value, dict):
        return [key.encode() for key in value] + [k for v in value.values() for k in _keys(v)]
    if isinstance(value, list):
        return [k for item in value for k in _keys(item)]
    return []
