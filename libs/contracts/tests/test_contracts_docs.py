"""The committed docs/contracts are exactly what `python -m contracts export` writes."""

import json
import re
from pathlib import Path

import pytest

from contracts import ClientEvent, ServerEvent, names
from contracts.schema_export import GENERATED_DIRS, export, render_documents
from contracts.sockets import CLIENT_ACKS

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "contracts"
REGENERATE = "run `python -m contracts export docs/contracts`"


def test_committed_docs_are_up_to_date(tmp_path: Path) -> None:
    export(tmp_path)
    generated = {
        path.relative_to(tmp_path).as_posix(): path.read_bytes()
        for path in tmp_path.rglob("*.json")
    }
    committed = {
        path.relative_to(COMMITTED).as_posix(): path.read_bytes()
        for path in COMMITTED.rglob("*.json")
    }
    assert sorted(committed) == sorted(generated), REGENERATE
    stale = [name for name, content in generated.items() if committed[name] != content]
    assert not stale, f"{stale} are stale: {REGENERATE}"


def test_export_removes_schemas_of_removed_contracts(tmp_path: Path) -> None:
    orphan = tmp_path / GENERATED_DIRS[0] / "message.teleported.json"
    orphan.parent.mkdir()
    orphan.write_text("{}")
    export(tmp_path)
    assert not orphan.exists()


def test_rendering_is_deterministic() -> None:
    assert render_documents() == render_documents()


def test_asyncapi_has_a_channel_and_producer_for_every_routing_key() -> None:
    document = json.loads(render_documents()["asyncapi.json"])
    assert document["asyncapi"] == "3.0.0"
    channels = document["channels"]
    sends = {
        op["channel"]["$ref"] for op in document["operations"].values() if op["action"] == "send"
    }
    for key in names.ROUTING_KEYS:
        channel = channels[key]
        assert channel["address"] == key
        assert channel["bindings"]["amqp"]["exchange"] == {
            "name": names.EXCHANGE,
            "type": "topic",
            "durable": True,
            "autoDelete": False,
            "vhost": "/",
        }
        assert f"#/channels/{key}" in sends
    for queue in (names.MESSAGES_QUEUE, names.NOTIFICATIONS_QUEUE, names.MEDIA_QUEUE):
        assert channels[queue]["bindings"]["amqp"]["queue"]["durable"] is True


@pytest.mark.parametrize("name", ["asyncapi.json", "socketio.asyncapi.json"])
def test_asyncapi_references_resolve(name: str) -> None:
    document = json.loads(render_documents()[name])
    refs = list(_refs(document))
    assert refs
    for ref in refs:
        node = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


SOCKET_DOCUMENT = "socketio.asyncapi.json"


def test_socket_asyncapi_has_every_event_and_its_acks() -> None:
    document = json.loads(render_documents()[SOCKET_DOCUMENT])
    messages = document["components"]["messages"]
    by_event = {
        messages[op["messages"][0]["$ref"].rsplit("/", 1)[1]]["name"]: op
        for op in document["operations"].values()
    }
    for event in ClientEvent:
        operation = by_event[event]
        assert operation["action"] == "receive"
        acks = [ref["$ref"].rsplit("/", 1)[1] for ref in operation["reply"]["messages"]]
        titles = {messages[ack]["title"] for ack in acks}
        assert titles == {CLIENT_ACKS[event].__name__, "AckFailure"}
    for server_event in ServerEvent:
        assert by_event[server_event]["action"] == "send"
    assert by_event["connect"]["action"] == "receive"


def test_socket_asyncapi_keys_are_valid_component_names() -> None:
    document = json.loads(render_documents()[SOCKET_DOCUMENT])
    for section in ("messages", "schemas"):
        for key in document["components"][section]:
            assert re.fullmatch(r"[A-Za-z0-9.\-_]+", key), key
    for key in document["operations"]:
        assert re.fullmatch(r"[A-Za-z0-9.\-_]+", key), key
