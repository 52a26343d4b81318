"""The envelope every message on the `chat` exchange travels in, and its JSON codec.

Decoding reads `type` first, then decodes the whole document strictly with the payload type
registered for it, so a consumer gets typed data or one `ContractError` it can dead-letter.
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import Meta

from contracts.errors import ContractError
from contracts.events import EVENT_TYPES
from contracts.wire import Event, UtcDatetime, WireStruct


class Envelope[T](WireStruct, frozen=True, kw_only=True):
    """One message on the bus: `type` is its routing key, `data` the payload of that type."""

    id: UUID
    type: str
    version: Annotated[int, Meta(ge=1)]
    occurred_at: UtcDatetime
    producer: Annotated[str, Meta(min_length=1, max_length=64)]
    trace_id: Annotated[str, Meta(min_length=1, max_length=128)]
    data: T


class _EnvelopeType(msgspec.Struct):
    type: str


_ENCODER = msgspec.json.Encoder()
_TYPE_DECODER = msgspec.json.Decoder(_EnvelopeType)


def envelope_type(payload: type[Event]) -> Any:
    """`Envelope[payload]` for a payload type only known at runtime."""
    return Envelope[payload]  # type: ignore[valid-type]  # runtime type argument, by design


_DECODERS: dict[str, msgspec.json.Decoder[Envelope[Any]]] = {
    key: msgspec.json.Decoder(envelope_type(payload)) for key, payload in EVENT_TYPES.items()
}


def make_envelope[E: Event](
    data: E,
    *,
    producer: str,
    trace_id: str | None = None,
    event_id: UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope[E]:
    """Wrap `data` with the routing key and version its type declares."""
    if occurred_at is not None and occurred_at.tzinfo is None:
        raise ContractError("invalid envelope: `occurred_at` must carry a timezone")
    return Envelope(
        id=event_id or uuid.uuid4(),
        type=data.event_type,
        version=data.event_version,
        occurred_at=occurred_at or datetime.now(UTC),
        producer=producer,
        trace_id=trace_id or uuid.uuid4().hex,
        data=data,
    )


def encode_envelope(envelope: Envelope[Any]) -> bytes:
    """JSON bytes of `envelope`, as published."""
    return _ENCODER.encode(envelope)


def decode_envelope(raw: bytes | bytearray | memoryview | str) -> Envelope[Any]:
    """Decode and validate a published message; raise `ContractError` if it breaks contract."""
    try:
        event_type = _TYPE_DECODER.decode(raw).type
        decoder = _DECODERS.get(event_type)
        if decoder is None:
            raise ContractError(
                f"invalid envelope: unknown event type {event_type!r} - at `$.type`"
            )
        envelope = decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise ContractError.from_msgspec("envelope", exc) from exc
    except UnicodeDecodeError as exc:  # raised from inside a string, not as a DecodeError
        reason = f"{exc.reason} at byte {exc.start}"
        raise ContractError(f"invalid envelope: not UTF-8 ({reason})") from exc
    expected = EVENT_TYPES[event_type].event_version
    if envelope.version != expected:
        raise ContractError(
            f"invalid envelope: unsupported version {envelope.version} of {event_type!r}"
            f" (expected {expected}) - at `$.version`"
        )
    return envelope
