"""Real socket traffic through the API gateway against the Socket.IO AsyncAPI document
(docs/contracts/socketio.asyncapi.json): every event a client receives, every ack of every
client event (success and refusal) and the `connect_error` data validate against the schema the
document gives for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
import socketio
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from devstack.waiting import until
from e2e.accounts import accept, create_conversation, direct_conversation, register
from e2e.clients import SOCKET_PATH, connected_socket
from e2e.fleet import RunningFleet

DOCUMENT_PATH = Path(__file__).resolve().parents[3] / "docs/contracts/socketio.asyncapi.json"
DOCUMENT_URI = "urn:chat:socketio-asyncapi"
WAIT_SECONDS = 10.0

# What the script below makes the gateway send; the document may hold more (media:processed,
# notification:new, sync:required), which are checked whenever they arrive.
EXPECTED_SERVER_EVENTS = {
    "message:received",
    "message:updated",
    "message:deleted",
    "conversation:created",
    "conversation:read",
    "conversation:updated",
    "conversation:member-added",
    "conversation:member-removed",
    "conversation:member-updated",
    "user:typing",
    "user:stopped-typing",
    "user:joined",
    "user:left",
    "user:online",
    "user:offline",
}


class SocketContract:
    """The Socket.IO AsyncAPI document, as a client developer reads it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
        self._messages: dict[str, Any] = document["components"]["messages"]
        operations = document["operations"].values()
        self.sent = self._operations(operations, "send")
        self.received = self._operations(operations, "receive")

    def _operations(self, operations: Any, action: str) -> dict[str, Any]:
        """The operations of ``action``, by the event name of their message."""
        return {
            self._message(op["messages"][0])["name"]: op
            for op in operations
            if op["action"] == action
        }

    def _message(self, ref: dict[str, str]) -> dict[str, Any]:
        message: dict[str, Any] = self._messages[ref["$ref"].rsplit("/", 1)[1]]
        return message

    def _errors(self, message: dict[str, Any], instance: object) -> list[str]:
        schema = {"$ref": f"{DOCUMENT_URI}{message['payload']['$ref']}"}
        validator = jsonschema.Draft202012Validator(
            schema, registry=self._registry, format_checker=jsonschema.FormatChecker()
        )
        return [error.message for error in validator.iter_errors(instance)]

    def server_event_errors(self, event: str, data: object) -> list[str]:
        if event not in self.sent:
            return [f"`{event}` is not a server event of the document"]
        return self._errors(self._message(self.sent[event]["messages"][0]), data)

    def ack_errors(self, event: str, ack: object) -> list[str]:
        """Errors of ``ack`` against every reply the document gives ``event``: none if it
        matches one of them."""
        replies = [self._message(ref) for ref in self.received[event]["reply"]["messages"]]
        tries = [self._errors(reply, ack) for reply in replies]
        return [] if any(not errors for errors in tries) else [e for t in tries for e in t]

    def failure_errors(self, ack: object) -> list[str]:
        return self._errors(self._messages["ackFailure"], ack)

    def connect_error_errors(self, data: object) -> list[str]:
        return self._errors(self._messages["connectError"], data)


class Traffic:
    """Every server event a socket receives, and every ack of what it emits."""

    def __init__(self, contract: SocketContract) -> None:
        self.contract = contract
        self.events: list[tuple[str, Any]] = []
        self.problems: list[str] = []

    def listen(self, socket: Any) -> None:
        async def any_event(event: str, data: Any = None) -> None:
            self.events.append((event, data))
            for error in self.contract.server_event_errors(event, data):
                self.problems.append(f"{event} {data!r}: {error}")

        socket.on("*", any_event)

    async def call(self, socket: Any, event: str, data: object) -> Any:
        ack = await socket.call(event, data, timeout=WAIT_SECONDS)
        check = (
            self.contract.ack_errors(event, ack)
            if event in self.contract.received
            else self.contract.failure_errors(ack)
        )
        self.problems += [f"ack of {event} {ack!r}: {error}" for error in check]
        return ack

    async def seen(self, *events: str) -> None:
        def missing() -> set[str]:
            return set(events) - {event for event, _ in self.events}

        await until(
            lambda: not missing(),
            timeout=WAIT_SECONDS,
            what=lambda: f"{missing()} (received only {[e for e, _ in self.events]})",
        )


@pytest.fixture(scope="module")
def contract() -> SocketContract:
    return SocketContract(json.loads(DOCUMENT_PATH.read_text()))


async def rest(
    http: aiohttp.ClientSession, method: str, path: str, user: dict[str, Any], **kwargs: Any
) -> Any:
    headers = {"Authorization": f"Bearer {user['token']}"}
    async with http.request(method, path, headers=headers, **kwargs) as reply:
        assert reply.status < 300, await reply.text()
        return await reply.json(content_type=None) if reply.status != 204 else None


async def test_every_event_and_ack_of_a_session_matches_the_asyncapi_document(
    http: aiohttp.ClientSession, fleet: RunningFleet, contract: SocketContract
) -> None:
    alice, bob, carol = [await register(http, tag="sio") for _ in range(3)]
    direct = await direct_conversation(http, alice, bob)
    await accept(http, bob, direct)
    await direct_conversation(http, alice, carol)  # chat knows carol
    alices, bobs = Traffic(contract), Traffic(contract)
    async with connected_socket(fleet.public_url, auth={"token": alice["token"]}) as a:
        alices.listen(a)
        async with connected_socket(fleet.public_url, auth={"token": bob["token"]}) as b:
            bobs.listen(b)
            await alices.seen("user:online")
            room = {"conversationId": direct}
            for event in ("typing:start", "typing:stop", "conversation:join"):
                assert (await alices.call(a, event, room))["ok"] is True
            assert (await alices.call(a, "conversation:leave", room))["ok"] is True

            body = {**room, "content": "hello", "clientMessageId": "sio-1"}
            sent = await alices.call(a, "message:send", body)
            assert sent["ok"] is True
            assert (await alices.call(a, "message:send", body))["message"] == sent["message"]
            refused = await alices.call(a, "message:send", {**room, "content": ""})
            assert refused["ok"] is False
            assert (await alices.call(a, "no:such-event", room))["ok"] is False

            path = f"/api/chat/{direct}/messages"
            second = (await rest(http, "POST", path, alice, json={"content": "to edit"}))["message"]
            await rest(http, "PATCH", f"{path}/{second['id']}", alice, json={"content": "x"})
            await rest(http, "DELETE", f"{path}/{sent['message']['id']}", alice)
            await rest(http, "POST", f"/api/chat/{direct}/read", bob, json={"seq": 2})

            status, created = await create_conversation(
                http,
                alice["token"],
                {"participantIds": [bob["user"]["id"]], "title": "Trip", "type": "group"},
            )
            assert status == 201, created
            group = created["conversation"]["id"]
            participants = f"/api/chat/{group}/participants"
            await rest(http, "PATCH", f"/api/chat/{group}", alice, json={"title": "Rome"})
            await rest(http, "POST", participants, alice, json={"userIds": [carol["user"]["id"]]})
            await rest(
                http,
                "PATCH",
                f"{participants}/{carol['user']['id']}",
                alice,
                json={"role": "admin"},
            )
            await rest(http, "DELETE", f"{participants}/{carol['user']['id']}", alice)

            presence = await bobs.call(
                b, "presence:get", {"userIds": [alice["user"]["id"], carol["user"]["id"]]}
            )
            assert presence["notFound"] == [carol["user"]["id"]]
            synced = await bobs.call(
                b, "sync", {"since": {direct: 0, group: 0}, "changesSince": {group: 0}}
            )
            assert set(synced["conversations"]) == {direct, group}
            assert "changes" in synced["conversations"][group]
            assert "changes" not in synced["conversations"][direct]
            await bobs.seen(
                *(EXPECTED_SERVER_EVENTS - {"user:online", "user:offline"} - {"conversation:read"})
            )
        await alices.seen("user:offline", "conversation:read")

    seen = {event for event, _ in alices.events + bobs.events}
    assert seen >= EXPECTED_SERVER_EVENTS, EXPECTED_SERVER_EVENTS - seen
    assert not alices.problems + bobs.problems


async def test_a_refused_connect_carries_the_documented_connect_error(
    fleet: RunningFleet, contract: SocketContract
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    client.on("connect_error", refusals.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            fleet.public_url,
            auth={"token": "not-a-token"},
            socketio_path=SOCKET_PATH,
            wait_timeout=WAIT_SECONDS,
        )
    [data] = refusals
    assert contract.connect_error_errors(data) == []
    assert "token" in data["message"]
