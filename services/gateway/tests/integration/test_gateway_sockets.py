"""The Socket.IO side of the real gateway app: handshake, acks, limits, and the send path
through the instance's own queue, with chat's REST API stood in for (see ``conftest``).

Cross-instance delivery, typing and presence transitions through the whole fleet are the e2e
suite's; these drive one in-process instance directly.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import socketio
from aio_pika.exceptions import ChannelNotFoundEntity
from aiohttp.test_utils import TestServer

from contracts import make_envelope
from contracts.envelope import Envelope
from contracts.events import (
    ConversationCreated,
    ConversationEngaged,
)
from contracts.names import MESSAGE_SEND, gateway_queue
from devstack.broker_probe import collect_settled
from devstack.isolation import RABBITMQ_PORT
from devstack.tcp_proxy import TcpProxy
from devstack.waiting import until
from gateway.app import create_app
from gateway.config import load_settings
from services.gateway.tests.integration.gateway_rig import connected_socket, next_command

if TYPE_CHECKING:
    from services.gateway.tests.integration.gateway_rig import Gateway, Identity

pytestmark = pytest.mark.integration


def send_payload(conversation_id: uuid.UUID | str, client_message_id: str) -> dict[str, Any]:
    return {
        "conversationId": str(conversation_id),
        "content": "hello",
        "clientMessageId": client_message_id,
    }


async def presence_once(
    client: socketio.AsyncClient, query: dict[str, Any], holds: Callable[[Any], bool]
) -> dict[str, Any]:
    """The first ``presence:get`` answer whose ``presence`` map ``holds``."""

    async def answer() -> dict[str, Any] | None:
        ack: dict[str, Any] = await client.call("presence:get", query, timeout=5)
        return ack if holds(ack["presence"]) else None

    return await until(answer, timeout=5, what=f"presence:get {query} to hold")


def error_code(ack: dict[str, Any]) -> str:
    assert ack["ok"] is False, ack
    assert isinstance(ack["error"]["message"], str)
    code: str = ack["error"]["code"]
    return code


async def test_a_valid_token_connects_and_chat_is_asked_for_its_conversations(
    gateway: Gateway,
) -> None:
    alice = gateway.identity()
    async with gateway.socket(alice.token) as client:
        assert client.connected
        ack = await client.call("presence:get", {"userIds": [str(alice.user_id)]}, timeout=5)
    assert ack == {
        "ok": True,
        "presence": {str(alice.user_id): {"online": True, "lastSeenAt": None}},
        "notFound": [],
    }
    assert ("/api/chat/ids", f"Bearer {alice.token}") in gateway.chat.requests


async def test_a_connect_is_refused_while_chat_cannot_list_the_users_conversations(
    gateway: Gateway,
) -> None:
    alice = gateway.identity()
    gateway.chat.failing.add(alice.token)
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            gateway.url,
            auth={"token": alice.token},
            transports=["websocket"],
            socketio_path="socket.io",
            wait_timeout=5,
        )
    assert errors == [{"message": "temporarily unavailable"}]
    assert not client.connected


async def test_the_websocket_handshake_does_not_negotiate_permessage_deflate(
    gateway: Gateway,
) -> None:
    # The raw upgrade: the 101 must carry no Sec-WebSocket-Extensions, though the client asked.
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {gateway.host}:{gateway.port}\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                "\r\n"
            ).encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower() for name, _, _ in (line.partition(":") for line in lines)}
    assert status.startswith("HTTP/1.1 101"), status
    assert "upgrade" in headers
    assert "sec-websocket-extensions" not in headers, head

    # aiohttp's client offering the extension ends up with none.
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{gateway.url}/socket.io/?EIO=4&transport=websocket", compress=15) as ws,
    ):
        opening = await ws.receive_str(timeout=5)
        assert ws.compress == 0
        assert opening.startswith("0{")  # engine.io's OPEN packet
        assert '"sid"' in opening


async def test_message_send_for_a_conversation_chat_does_not_show_the_user_is_not_found(
    gateway: Gateway,
) -> None:
    alice = gateway.identity()
    unknown = uuid.uuid4()
    async with gateway.socket(alice.token) as client:
        ack = await client.call("message:send", send_payload(unknown, "c-1"), timeout=5)
    assert error_code(ack) == "not_found"
    assert gateway.chat.asked_about(unknown) == [f"Bearer {alice.token}"]


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("message:send", None),
        ("message:send", "hello"),
        ("message:send", {}),
        ("message:send", {**send_payload(uuid.uuid4(), "c"), "conversationId": "not-a-uuid"}),
        ("message:send", {**send_payload(uuid.uuid4(), "c"), "content": "   "}),
        ("message:send", {**send_payload(uuid.uuid4(), "c"), "clientMessageId": "x" * 65}),
        ("message:send", {**send_payload(uuid.uuid4(), "c"), "extra": 1}),
        ("presence:get", {"userIds": "everyone"}),
        ("presence:get", {"userIds": [str(uuid.uuid4()) for _ in range(201)]}),
        ("sync", {"since": {str(uuid.uuid4()): -1}}),
        ("typing:start", {"conversationId": 5}),
    ],
    ids=[
        "none",
        "string",
        "empty",
        "bad-uuid",
        "blank-content",
        "long-client-id",
        "unknown-field",
        "ids-not-a-list",
        "too-many-ids",
        "negative-seq",
        "numeric-conversation",
    ],
)
async def test_an_invalid_payload_is_answered_invalid(
    gateway: Gateway, event: str, payload: Any
) -> None:
    alice = gateway.identity()
    async with gateway.socket(alice.token) as client:
        ack = await client.call(event, payload, timeout=5)
    assert error_code(ack) == "invalid"


async def test_events_beyond_the_sockets_bucket_are_rate_limited(gateway: Gateway) -> None:
    socket_bucket = gateway.event_limit[0]
    alice, bob = gateway.identity(), gateway.identity()
    query = {"userIds": [str(alice.user_id)]}
    async with gateway.socket(alice.token) as flooder, gateway.socket(bob.token) as calm:
        acks = await asyncio.gather(
            *(flooder.call("presence:get", query, timeout=5) for _ in range(10))
        )
        assert sum(ack["ok"] for ack in acks) == socket_bucket.capacity
        refused = [ack for ack in acks if not ack["ok"]]
        assert {error_code(ack) for ack in refused} == {"rate_limited"}
        assert all("retry in" in ack["error"]["message"] for ack in refused)
        # Another user is not held back by it.
        assert (await calm.call("presence:get", query, timeout=5))["ok"] is True


async def test_the_users_bucket_spans_all_of_their_sockets(gateway: Gateway) -> None:
    per_socket, per_user = gateway.event_limit
    alice = gateway.identity()
    query = {"userIds": [str(alice.user_id)]}
    async with gateway.socket(alice.token) as phone, gateway.socket(alice.token) as laptop:
        for _ in range(per_socket.capacity):
            assert (await phone.call("presence:get", query, timeout=5))["ok"] is True
        acks = [
            await laptop.call("presence:get", query, timeout=5) for _ in range(per_socket.capacity)
        ]
    left_for_laptop = per_user.capacity - per_socket.capacity
    assert [ack["ok"] for ack in acks] == [True] * left_for_laptop + [False] * (
        per_socket.capacity - left_for_laptop
    )
    assert {error_code(ack) for ack in acks[left_for_laptop:]} == {"rate_limited"}


async def test_message_sends_are_limited_by_their_own_bucket(gateway: Gateway) -> None:
    per_socket = gateway.send_limit[0]
    alice = gateway.identity()
    unknown = uuid.uuid4()
    async with gateway.socket(alice.token) as client:
        acks = [
            await client.call("message:send", send_payload(unknown, f"c-{i}"), timeout=5)
            for i in range(per_socket.capacity + 1)
        ]
        other_events = await client.call("presence:get", {"userIds": []}, timeout=5)
    codes = [error_code(ack) for ack in acks]
    assert codes == ["not_found"] * per_socket.capacity + ["rate_limited"]
    assert other_events == {"ok": True, "presence": {}, "notFound": []}


def share_a_conversation(gateway: Gateway, *people: Identity) -> uuid.UUID:
    """A conversation of ``people`` that chat lists for each of them."""
    conversation = uuid.uuid4()
    gateway.chat.members[conversation] = [person.user_id for person in people]
    for person in people:
        gateway.chat.listed.setdefault(person.token, []).append(conversation)
    return conversation


async def announce_conversation(
    gateway: Gateway, conversation: uuid.UUID, *, everyone_took_part: bool = True
) -> None:
    """What chat publishes when it created ``conversation`` (by its first member), and, unless
    told otherwise, when each of the others took part in it."""
    members = gateway.chat.members[conversation]
    created = ConversationCreated(
        conversation_id=conversation,
        type="group",
        created_by=members[0],
        participant_ids=members,
        created_at=datetime.now(UTC),
    )
    events: list[Envelope[Any]] = [make_envelope(created, producer="chat")]
    if everyone_took_part:
        events += [take_part(member, conversation) for member in members[1:]]
    await gateway.publisher.publish_envelopes(events)


def take_part(user_id: uuid.UUID, conversation: uuid.UUID) -> Envelope[Any]:
    engaged = ConversationEngaged(
        conversation_id=conversation, user_id=user_id, at=datetime.now(UTC)
    )
    return make_envelope(engaged, producer="chat")


async def test_presence_get_answers_online_last_seen_and_never_seen(gateway: Gateway) -> None:
    asker, left, never = gateway.identity(), gateway.identity(), gateway.identity()
    conversation = share_a_conversation(gateway, asker, left, never)
    async with gateway.socket(left.token):
        pass
    async with gateway.socket(asker.token) as client:
        # ``never`` has never connected: the conversation's creation is what relates them.
        await announce_conversation(gateway, conversation)
        query = {"userIds": [str(asker.user_id), str(left.user_id), str(never.user_id)]}
        # The server handles events on its own time.
        ack = await presence_once(
            client,
            query,
            lambda seen: str(never.user_id) in seen and seen[str(left.user_id)]["online"] is False,
        )
    presence = ack["presence"]
    assert ack["notFound"] == []
    assert presence[str(asker.user_id)] == {"online": True, "lastSeenAt": None}
    assert presence[str(never.user_id)] == {"online": False, "lastSeenAt": None}
    last_seen = presence[str(left.user_id)]["lastSeenAt"]
    assert isinstance(last_seen, str)
    assert last_seen.endswith("Z")
    seen_at = datetime.fromisoformat(last_seen)
    assert abs((datetime.now(UTC) - seen_at).total_seconds()) < 30


async def test_presence_get_hides_users_who_share_no_conversation_with_the_caller(
    gateway: Gateway,
) -> None:
    asker, friend, stranger = gateway.identity(), gateway.identity(), gateway.identity()
    share_a_conversation(gateway, asker, friend)
    share_a_conversation(gateway, stranger, gateway.identity())
    async with (
        gateway.socket(friend.token),
        gateway.socket(stranger.token),
        gateway.socket(asker.token) as client,
    ):
        nobody = uuid.uuid4()
        query = {"userIds": [str(friend.user_id), str(stranger.user_id), str(nobody)]}
        ack = await client.call("presence:get", query, timeout=5)
    assert ack["ok"] is True
    assert ack["presence"] == {str(friend.user_id): {"online": True, "lastSeenAt": None}}
    assert ack["notFound"] == [str(stranger.user_id), str(nobody)]


async def test_a_conversation_created_after_connecting_makes_presence_visible(
    gateway: Gateway,
) -> None:
    asker, newcomer = gateway.identity(), gateway.identity()
    async with gateway.socket(newcomer.token), gateway.socket(asker.token) as client:
        query = {"userIds": [str(newcomer.user_id)]}
        before = await client.call("presence:get", query, timeout=5)
        conversation = uuid.uuid4()
        gateway.chat.members[conversation] = [asker.user_id, newcomer.user_id]
        await announce_conversation(gateway, conversation)
        after = await presence_once(client, query, bool)
    assert before["notFound"] == [str(newcomer.user_id)]
    assert after["presence"] == {str(newcomer.user_id): {"online": True, "lastSeenAt": None}}


async def test_a_member_who_has_not_taken_part_keeps_their_presence_until_they_do(
    gateway: Gateway,
) -> None:
    opener, invited = gateway.identity(), gateway.identity()
    async with gateway.socket(invited.token), gateway.socket(opener.token) as client:
        conversation = uuid.uuid4()
        gateway.chat.members[conversation] = [opener.user_id, invited.user_id]
        await announce_conversation(gateway, conversation, everyone_took_part=False)
        query = {"userIds": [str(invited.user_id)]}
        await asyncio.sleep(0.3)  # the creation has been handled: still nothing to see
        hidden = await client.call("presence:get", query, timeout=5)
        await gateway.publisher.publish_envelopes([take_part(invited.user_id, conversation)])
        shown = await presence_once(client, query, bool)
    assert hidden["notFound"] == [str(invited.user_id)]
    assert shown["presence"] == {str(invited.user_id): {"online": True, "lastSeenAt": None}}


async def test_message_send_is_acked_with_the_stored_message_when_message_created_arrives(
    gateway: Gateway,
) -> None:
    alice, bob = gateway.identity(), gateway.identity()
    conversation = uuid.uuid4()
    gateway.chat.members[conversation] = [alice.user_id, bob.user_id]
    gateway.chat.listed[alice.token] = [conversation]
    received: list[dict[str, Any]] = []
    async with gateway.probe(MESSAGE_SEND) as commands, gateway.socket(alice.token) as client:
        client.on("message:received", received.append)
        sending = asyncio.ensure_future(
            client.call("message:send", send_payload(conversation, "first"), timeout=10)
        )
        command = await next_command(commands)
        assert (command.conversation_id, command.sender_id, command.client_message_id) == (
            conversation,
            alice.user_id,
            "first",
        )
        assert command.content == "hello"
        assert command.socket_id == client.get_sid()
        assert not sending.done()  # the ack waits for the stored message

        view = await gateway.answer_stored(command, seq=1)
        ack = await asyncio.wait_for(sending, 5)
        assert ack["ok"] is True
        assert ack["message"]["id"] == str(view.id)
        assert ack["message"]["seq"] == 1
        # The socket is in the room chat listed on connect.
        await until(lambda: received, timeout=5, interval=0.02)
        assert [m["id"] for m in received] == [str(view.id)]

        # A resend of a stored message is answered from the record, not sent to chat again.
        again = await client.call("message:send", send_payload(conversation, "first"), timeout=5)
        assert again == ack
        assert await collect_settled(commands, quiet=0.3) == []


async def test_a_send_not_confirmed_in_time_times_out_and_a_resend_gets_the_late_message(
    gateway: Gateway,
) -> None:
    alice = gateway.identity()
    conversation = uuid.uuid4()
    gateway.chat.members[conversation] = [alice.user_id]
    async with gateway.probe(MESSAGE_SEND) as commands, gateway.socket(alice.token) as client:
        started = asyncio.get_running_loop().time()
        ack = await client.call("message:send", send_payload(conversation, "slow"), timeout=10)
        waited = asyncio.get_running_loop().time() - started
        assert error_code(ack) == "timeout"
        assert waited >= gateway.settings.ack_timeout_seconds - 0.1
        first = await next_command(commands)

        resending = asyncio.ensure_future(
            client.call("message:send", send_payload(conversation, "slow"), timeout=10)
        )
        await next_command(commands)  # the resend is published too; chat stores it once
        view = await gateway.answer_stored(first)
        resent = await asyncio.wait_for(resending, 5)
        assert resent["ok"] is True
        assert resent["message"]["id"] == str(view.id)


async def test_a_resend_chat_had_stored_is_answered_by_message_already_stored_alone(
    gateway: Gateway,
) -> None:
    """The instance's record of stored sends is in Redis; when it is gone (Redis restarted),
    a resend goes to chat again, which stores nothing and answers ``message.already_stored``
    to the sender alone: the ack resolves, and nobody gets the message a second time."""
    alice, bob = gateway.identity(), gateway.identity()
    conversation = share_a_conversation(gateway, alice, bob)
    received: list[dict[str, Any]] = []
    async with (
        gateway.probe(MESSAGE_SEND) as commands,
        gateway.socket(alice.token) as client,
        gateway.socket(bob.token) as other,
    ):
        other.on("message:received", received.append)
        sending = asyncio.ensure_future(
            client.call("message:send", send_payload(conversation, "again"), timeout=10)
        )
        view = await gateway.answer_stored(await next_command(commands), seq=7, already=True)
        ack = await asyncio.wait_for(sending, 5)
        assert ack["ok"] is True
        assert (ack["message"]["id"], ack["message"]["seq"]) == (str(view.id), 7)
        await asyncio.sleep(0.3)  # a broadcast of the answer, wrongly sent, would arrive meanwhile
    assert received == []


async def test_an_instance_without_clients_shuts_down_cleanly(gateway: Gateway) -> None:
    instance = f"gateway-idle-{uuid.uuid4().hex[:8]}"
    app = create_app(load_settings({**gateway.env, "INSTANCE_ID": instance}))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with gateway.socket(gateway.identity().token):
        pass  # another instance's client: this one has none

    await server.close()  # on_shutdown, then the cleanup contexts

    # The broker side closed too: the instance's exclusive queue went with its connection.
    channel = await gateway.broker.channel()
    with pytest.raises(ChannelNotFoundEntity):
        await channel.declare_queue(gateway_queue(instance), passive=True)


async def test_reserved_event_names_from_a_client_never_reach_the_servers_handlers(
    gateway: Gateway,
) -> None:
    alice, mallory = gateway.identity(), gateway.identity()
    async with gateway.socket(mallory.token) as client:
        for name, data in (("disconnect", None), ("connect", {"token": alice.token})):
            ack = await client.call(name, data, timeout=5)
            assert error_code(ack) == "invalid", name
        assert client.connected
        # Still online (no offline transition ran) and still mallory: alice's presence is
        # hers to ask for only if they share a conversation, and mallory's own is visible.
        ack = await client.call("presence:get", {"userIds": [str(mallory.user_id)]}, timeout=5)
        assert ack["presence"] == {str(mallory.user_id): {"online": True, "lastSeenAt": None}}
        ack = await client.call("presence:get", {"userIds": [str(alice.user_id)]}, timeout=5)
        assert ack["notFound"] == [str(alice.user_id)]


async def test_an_unknown_event_with_an_ack_is_answered_invalid(gateway: Gateway) -> None:
    alice = gateway.identity()
    async with gateway.socket(alice.token) as client:
        ack = await client.call("message:delete-everything", {"all": True}, timeout=5)
        assert error_code(ack) == "invalid"
        assert "unknown event" in ack["error"]["message"]


async def test_a_half_open_polling_session_does_not_hold_up_a_shutdown(gateway: Gateway) -> None:
    instance = f"gateway-halfopen-{uuid.uuid4().hex[:8]}"
    app = create_app(load_settings({**gateway.env, "INSTANCE_ID": instance}))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    # An engine.io session opened and then left alone: no Socket.IO connect, no further poll.
    handshake = f"http://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http, http.get(handshake) as reply:
        assert reply.status == 200, await reply.text()

    started = time.monotonic()
    await asyncio.wait_for(server.close(), 10)
    assert time.monotonic() - started < 5


async def test_sockets_are_told_to_sync_once_the_instance_queue_is_back_after_a_broker_cut(
    gateway: Gateway,
) -> None:
    """The instance's queue is exclusive: while its broker connection is down, what is
    published never reaches it. Once aio-pika has declared it again, its sockets hear
    ``sync:required`` (and not before: a sync made earlier could still miss events)."""
    proxy = await TcpProxy("127.0.0.1", RABBITMQ_PORT).start()
    instance = f"gateway-test-{uuid.uuid4().hex[:8]}"
    env = {
        **gateway.env,
        "RABBITMQ_URL": proxy.url_for(gateway.env["RABBITMQ_URL"], RABBITMQ_PORT),
        "INSTANCE_ID": instance,
    }
    told: list[Any] = []
    heard = asyncio.Event()
    client = socketio.AsyncClient(reconnection=False)

    async def on_sync_required(data: Any) -> None:
        told.append(data)
        heard.set()

    client.on("sync:required", on_sync_required)
    try:
        async with TestServer(create_app(load_settings(env)), host="127.0.0.1") as server:
            alice = gateway.identity()
            await client.connect(
                str(server.make_url("")),
                auth={"token": alice.token},
                transports=["websocket"],
                wait_timeout=5,
            )
            await proxy.cut()
            await asyncio.sleep(1.5)  # aio-pika retries every second, into a closed port
            assert told == []
            await proxy.restore()
            async with asyncio.timeout(15):
                await heard.wait()
            assert told == [{"reason": "events_missed"}]
            # Declared and bound again: chat's news of a conversation reaches the socket.
            created = asyncio.Event()
            client.on("conversation:created", lambda *_: created.set())
            conversation = uuid.uuid4()
            gateway.chat.members[conversation] = [alice.user_id, uuid.uuid4()]
            await announce_conversation(gateway, conversation)
            async with asyncio.timeout(10):
                await created.wait()
            await client.disconnect()
    finally:
        await proxy.close()


async def test_an_event_while_redis_is_unreachable_is_answered_internal_not_left_unanswered(
    gateway: Gateway,
) -> None:
    """Redis restarting must not leave a client waiting on an ack it never gets: the event is
    answered ``internal`` at once and the client resends (docs/realtime.md)."""
    redis_port = urlsplit(gateway.env["REDIS_URL"]).port or 6379
    proxy = await TcpProxy("127.0.0.1", redis_port).start()
    env = {
        **gateway.env,
        "REDIS_URL": proxy.url_for(gateway.env["REDIS_URL"], redis_port),
        "INSTANCE_ID": f"gateway-test-{uuid.uuid4().hex[:8]}",
    }
    alice = gateway.identity()
    try:
        async with (
            TestServer(create_app(load_settings(env)), host="127.0.0.1") as server,
            connected_socket(str(server.make_url("")), alice.token) as client,
        ):
            await proxy.cut()
            started = time.monotonic()
            ack = await client.call("presence:get", {"userIds": []}, timeout=10)
            assert error_code(ack) == "internal"
            assert time.monotonic() - started < 5
            sent = await client.call("message:send", send_payload(uuid.uuid4(), "r"), timeout=10)
            assert error_code(sent) == "internal"
            await proxy.restore()
    finally:
        await proxy.close()
