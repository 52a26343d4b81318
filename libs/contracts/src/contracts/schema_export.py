"""JSON Schemas and the AsyncAPI 3.0 documents of the contracts, as written to `docs/contracts`.

The output is deterministic (sorted keys, fixed order) so a test can regenerate it and compare
it with the committed copy. Producers and consumers come from `contracts.topology`.
"""

from pathlib import Path
from typing import Any, Final
from uuid import UUID

import msgspec

from contracts import names, topology
from contracts.envelope import envelope_type, make_envelope
from contracts.events import EVENT_TYPES
from contracts.examples import AT, EVENT_EXAMPLES
from contracts.socket_asyncapi import socket_asyncapi_document
from contracts.sockets import (
    CLIENT_ACKS,
    CLIENT_PAYLOADS,
    SERVER_PAYLOADS,
    AckError,
    AckFailure,
    PresenceState,
    SyncChange,
    SyncConversation,
)
from contracts.wire import Event, WireStruct

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
AMQP_BINDING_VERSION: Final = "0.3.0"
GENERATED_DIRS: Final = ("events", "sockets")

_EXAMPLE_EVENT_ID: Final = UUID("00000000-0000-4000-8000-0000000000e1")
_GATEWAY_CHANNEL: Final = "gateway.instance.queue"

Json = dict[str, Any]


def socket_payload_types() -> tuple[type[WireStruct], ...]:
    """Every Socket.IO payload type, client events first, without repeats."""
    ordered: list[type[WireStruct]] = [
        *CLIENT_PAYLOADS.values(),
        *SERVER_PAYLOADS.values(),
        *CLIENT_ACKS.values(),
        PresenceState,
        SyncChange,
        SyncConversation,
        AckError,
        AckFailure,
    ]
    return tuple(dict.fromkeys(ordered))


def render_documents() -> dict[str, bytes]:
    """Relative path -> file content of everything `export` writes."""
    documents = {
        f"events/{key}.json": _dump(_event_schema(payload)) for key, payload in EVENT_TYPES.items()
    }
    for payload in socket_payload_types():
        schema = {"$schema": SCHEMA_DIALECT, **msgspec.json.schema(payload)}
        documents[f"sockets/{payload.__name__}.json"] = _dump(schema)
    documents["asyncapi.json"] = _dump(asyncapi_document())
    documents["socketio.asyncapi.json"] = _dump(socket_asyncapi_document())
    return documents


def export(out_dir: Path) -> list[Path]:
    """Write the documents under `out_dir`, removing schema files no contract produces any more."""
    documents = render_documents()
    for sub in GENERATED_DIRS:
        for stale in (out_dir / sub).glob("*.json"):
            if f"{sub}/{stale.name}" not in documents:
                stale.unlink()
    written = []
    for relative, content in documents.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written


def asyncapi_document() -> Json:
    """AsyncAPI 3.0.0 description of the `chat` exchange: one channel per routing key."""
    refs, schemas = msgspec.json.schema_components(
        [envelope_type(payload) for payload in EVENT_TYPES.values()],
        ref_template="#/components/schemas/{name}",
    )
    for ref, payload in zip(refs, EVENT_TYPES.values(), strict=True):
        _pin_envelope(schemas[_ref_name(ref["$ref"])], payload)
    messages = {
        payload.__name__: _message(key, payload, envelope_ref=ref["$ref"])
        for ref, (key, payload) in zip(refs, EVENT_TYPES.items(), strict=True)
    }
    channels = {key: _routing_key_channel(key, payload) for key, payload in EVENT_TYPES.items()}
    operations = {
        f"{producer}.send.{key}": _send_operation(producer, key)
        for key, producer in topology.PRODUCERS.items()
    }
    for queue in _consumed_queues():
        keys = _bound_keys(queue)
        channel_id = _GATEWAY_CHANNEL if queue.consumer == "gateway" else queue.name
        channels[channel_id] = _queue_channel(queue, keys)
        for key in keys:
            operations[f"{queue.consumer}.receive.{key}"] = _receive_operation(
                queue, key, channel_id
            )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "chat fleet message bus",
            "version": "1.0.0",
            "description": (
                f"Events and commands on the RabbitMQ topic exchange `{names.EXCHANGE}`. Every"
                " message is a JSON envelope `{id, type, version, occurredAt, producer, traceId,"
                " data}` whose `type` equals the routing key; consumers reject unknown fields and"
                " versions. Messages are persistent and published with confirms; consumers are"
                " idempotent by envelope `id`. A delivery that keeps failing goes through"
                f" `{names.DEAD_LETTER_EXCHANGE}` to `<queue>.dlq`."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _event_schema(payload: type[Event]) -> Json:
    schema: Json = msgspec.json.schema(envelope_type(payload))
    _pin_envelope(schema["$defs"][_ref_name(schema["$ref"])], payload)
    return {"$schema": SCHEMA_DIALECT, "title": f"{payload.event_type} envelope", **schema}


def _pin_envelope(component: Json, payload: type[Event]) -> None:
    # The envelope is generic; a schema per event should still say which type and version.
    properties = component["properties"]
    properties["type"] = {"type": "string", "const": payload.event_type}
    properties["version"] = {"type": "integer", "const": payload.event_version}


def _message(key: str, payload: type[Event], *, envelope_ref: str) -> Json:
    example = make_envelope(
        EVENT_EXAMPLES[key],
        producer=topology.PRODUCERS[key],
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        event_id=_EXAMPLE_EVENT_ID,
        occurred_at=AT,
    )
    return {
        "name": key,
        "title": payload.__name__,
        "summary": (payload.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/json",
        "payload": {"$ref": envelope_ref},
        "bindings": {"amqp": {"messageType": key, "bindingVersion": AMQP_BINDING_VERSION}},
        "examples": [{"name": "example", "payload": msgspec.to_builtins(example)}],
    }


def _routing_key_channel(key: str, payload: type[Event]) -> Json:
    return {
        "address": key,
        "description": f"Routing key `{key}` on exchange `{names.EXCHANGE}`.",
        "messages": {payload.__name__: {"$ref": f"#/components/messages/{payload.__name__}"}},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": names.EXCHANGE,
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _queue_channel(queue: topology.QueueSpec, keys: list[str]) -> Json:
    patterns = ", ".join(f"`{pattern}`" for pattern in queue.binding_keys)
    if queue.consumer == "gateway":
        address = names.gateway_queue("{instanceId}")
        amqp_queue: Json = {"name": address, "vhost": "/"}
        extra: Json = {"parameters": {"instanceId": {"description": "Gateway process id."}}}
        lifetime = "One per gateway instance; it goes away with its instance."
    else:
        address = queue.name
        amqp_queue = {
            "name": address,
            "durable": True,
            "exclusive": False,
            "autoDelete": False,
            "vhost": "/",
        }
        extra = {}
        lifetime = f"Dead letters go to `{names.dead_letter_queue(queue.name)}`."
    return {
        "address": address,
        "description": (
            f"Queue consumed by {queue.consumer}, bound to `{names.EXCHANGE}` with {patterns}."
            f" {lifetime}"
        ),
        "messages": {
            EVENT_TYPES[key].__name__: {
                "$ref": f"#/components/messages/{EVENT_TYPES[key].__name__}"
            }
            for key in keys
        },
        "bindings": {
            "amqp": {"is": "queue", "queue": amqp_queue, "bindingVersion": AMQP_BINDING_VERSION}
        },
        **extra,
    }


def _send_operation(producer: str, key: str) -> Json:
    name = EVENT_TYPES[key].__name__
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{key}"},
        "messages": [{"$ref": f"#/channels/{key}/messages/{name}"}],
        "description": f"{producer} publishes `{key}` (persistent, publisher confirms).",
        "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": AMQP_BINDING_VERSION}},
    }


def _receive_operation(queue: topology.QueueSpec, key: str, channel_id: str) -> Json:
    name = EVENT_TYPES[key].__name__
    return {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{channel_id}"},
        "messages": [{"$ref": f"#/channels/{channel_id}/messages/{name}"}],
        "description": f"{queue.consumer} consumes `{key}` and acks after handling it.",
        "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
    }


def _consumed_queues() -> tuple[topology.QueueSpec, ...]:
    gateway = topology.QueueSpec(
        name=_GATEWAY_CHANNEL, binding_keys=topology.GATEWAY_BINDING_KEYS, consumer="gateway"
    )
    return (*topology.QUEUES, gateway)


def _bound_keys(queue: topology.QueueSpec) -> list[str]:
    return [
        key
        for key in names.ROUTING_KEYS
        if any(topology.topic_matches(pattern, key) for pattern in queue.binding_keys)
    ]


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _dump(document: Json) -> bytes:
    return msgspec.json.format(msgspec.json.encode(document, order="sorted"), indent=2) + b"\n"
