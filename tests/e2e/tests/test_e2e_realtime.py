"""Realtime messaging through the API gateway: two gateway instances, several devices each.

Clients bind distinct loopback source addresses, so nginx's address hash spreads their
WebSockets over both gateway instances (the test checks it did): a message sent on one
instance reaches devices on the other through each instance's own queue on the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import socketio

from devstack.waiting import until
from e2e.accounts import accept, direct_conversation, register
from e2e.fleet import RunningFleet

ADDRESSES = [f"127.0.0.{host}" for host in range(30, 42)]


class Device:
    def __init__(self, address: str) -> None:
        self.address = address
        self.received: list[dict[str, Any]] = []
        self.typing: list[dict[str, Any]] = []
        self.presence: list[tuple[str, dict[str, Any]]] = []
        self.client = socketio.AsyncClient(reconnection=False, http_session=self._session)
        self.client.on("message:received", self._on_message)
        self.client.on("user:typing", self._on_typing)
        self.client.on("user:stopped-typing", self._on_stopped_typing)
        self.client.on("disconnect", self._on_disconnect)
        self.stopped_typing: list[dict[str, Any]] = []
        self.disconnected = asyncio.Event()
        self.client.on("user:online", self._on_online)
        self.client.on("user:offline", self._on_offline)

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(self.address, 0)))

    async def _on_message(self, data: dict[str, Any]) -> None:
        self.received.append(data)

    async def _on_typing(self, data: dict[str, Any]) -> None:
        self.typing.append(data)

    async def _on_stopped_typing(self, data: dict[str, Any]) -> None:
        self.stopped_typing.append(data)

    async def _on_disconnect(self, *_: Any) -> None:
        self.disconnected.set()

    async def _on_online(self, data: dict[str, Any]) -> None:
        self.presence.append(("online", data))

    async def _on_offline(self, data: dict[str, Any]) -> None:
        self.presence.append(("offline", data))


@contextlib.asynccontextmanager
async def devices(
    fleet: RunningFleet, token: str, addresses: list[str]
) -> AsyncIterator[list[Device]]:
    connected = [Device(address) for address in addresses]
    await asyncio.gather(
        *(
            device.client.connect(
                fleet.public_url,
                auth={"token": token},
                transports=["websocket"],
                socketio_path="socket.io",
                wait_timeout=5,
            )
            for device in connected
        )
    )
    try:
        yield connected
    finally:
        await asyncio.gather(*(device.client.disconnect() for device in connected))


async def test_a_message_reaches_every_device_of_every_participant_once_across_instances(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob = await asyncio.gather(register(http, tag="rt"), register(http, tag="rt"))
    conversation_id = await direct_conversation(http, alice, bob)

    async with (
        devices(fleet, alice["token"], ADDRESSES[:2]) as alice_devices,
        devices(fleet, bob["token"], ADDRESSES[2:]) as bob_devices,
    ):
        ack = await alice_devices[0].client.call(
            "message:send",
            {"conversationId": conversation_id, "content": "hi bob", "clientMessageId": "rt-1"},
            timeout=15,
        )
        assert ack["ok"] is True, ack
        message = ack["message"]
        assert (message["seq"], message["content"]) == (1, "hi bob")

        everyone = alice_devices + bob_devices
        await until(lambda: all(device.received for device in everyone))
        await asyncio.sleep(0.5)  # anything duplicated would have arrived by now
        for device in everyone:
            assert [m["id"] for m in device.received] == [message["id"]], device.address

        # A resend with the same clientMessageId is acked with the same stored message.
        again = await bob_devices[0].client.call(
            "message:send",
            {"conversationId": conversation_id, "content": "hi alice", "clientMessageId": "rt-1"},
            timeout=15,
        )
        assert again["ok"] is True
        resent = await alice_devices[1].client.call(
            "message:send",
            {"conversationId": conversation_id, "content": "hi bob", "clientMessageId": "rt-1"},
            timeout=15,
        )
        assert (resent["ok"], resent["message"]["id"]) == (True, message["id"])

        # Typing reaches the other participant's devices, not the typist's own socket.
        typed = await alice_devices[0].client.call(
            "typing:start", {"conversationId": conversation_id}, timeout=5
        )
        assert typed == {"ok": True}
        await until(lambda: all(device.typing for device in bob_devices))
        assert alice_devices[0].typing == []

    # nginx logs a WebSocket when it closes: the devices spanned both gateway instances.
    await until(lambda: len(websocket_upstreams(fleet)) == 2, timeout=5)


def websocket_upstreams(fleet: RunningFleet) -> set[str]:
    return {
        str(entry["upstream"])
        for entry in fleet.access_log()
        if str(entry["remoteAddr"]) in ADDRESSES and "/socket.io/" in str(entry["uri"])
    }


async def test_client_events_answer_errors_in_the_ack(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob, carol = await asyncio.gather(
        register(http, tag="rt"), register(http, tag="rt"), register(http, tag="rt")
    )
    conversation_id = await direct_conversation(http, alice, bob)
    async with devices(fleet, carol["token"], ADDRESSES[:1]) as [outsider]:
        invalid = await outsider.client.call("message:send", {"conversationId": 5}, timeout=5)
        assert (invalid["ok"], invalid["error"]["code"]) == (False, "invalid")
        foreign = await outsider.client.call(
            "message:send",
            {"conversationId": conversation_id, "content": "x", "clientMessageId": "c"},
            timeout=5,
        )
        assert (foreign["ok"], foreign["error"]["code"]) == (False, "not_found")
        synced = await outsider.client.call("sync", {"since": {conversation_id: 0}}, timeout=5)
        assert synced["ok"] is True
        assert synced["notFound"] == [conversation_id]


async def test_a_client_away_while_105_messages_were_sent_gets_each_once_in_seq_order_by_sync(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob = await asyncio.gather(register(http, tag="rt"), register(http, tag="rt"))
    conversation_id = await direct_conversation(http, alice, bob)
    headers = {"Authorization": f"Bearer {alice['token']}"}

    async def send(number: int) -> None:
        body = {"content": f"m{number}", "clientMessageId": f"away-{number}"}
        async with http.post(
            f"/api/chat/{conversation_id}/messages", json=body, headers=headers
        ) as r:
            assert r.status == 201

    async with devices(fleet, bob["token"], ADDRESSES[:1]) as [phone]:
        await send(1)
        await until(lambda: len(phone.received) == 1)
        last_seq = phone.received[-1]["seq"]
    async with devices(fleet, alice["token"], ADDRESSES[:1]) as [witness]:
        for number in range(2, 107):  # while bob's phone is away
            await send(number)
        # A 201 means stored; its fan-out follows. Bob comes back once it has happened, so
        # that everything he missed is what sync owes him, not a late live delivery.
        await until(lambda: any(m["seq"] == 106 for m in witness.received))

    async with devices(fleet, bob["token"], ADDRESSES[1:2]) as [back]:
        caught_up: list[dict[str, Any]] = []
        pages = 0
        while True:
            synced = await back.client.call(
                "sync", {"since": {conversation_id: last_seq}}, timeout=10
            )
            assert synced["ok"] is True, synced
            page = synced["conversations"][conversation_id]
            caught_up += page["messages"]
            pages += 1
            if not page["hasMore"]:
                break
            last_seq = page["messages"][-1]["seq"]
        await asyncio.sleep(0.3)  # a late live copy of what was missed would arrive meanwhile
        assert back.received == []  # nothing from before the reconnect is pushed again
    assert pages == 2  # 100 a page
    assert [m["seq"] for m in caught_up] == list(range(2, 107))
    assert [m["content"] for m in caught_up] == [f"m{n}" for n in range(2, 107)]
    assert len({m["id"] for m in caught_up}) == 105


async def test_presence_transitions_reach_who_shares_a_conversation_once_per_transition(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob, stranger = await asyncio.gather(
        register(http, tag="rt"), register(http, tag="rt"), register(http, tag="rt")
    )
    await accept(http, bob, await direct_conversation(http, alice, bob))
    alice_id = alice["user"]["id"]
    async with (
        devices(fleet, bob["token"], ADDRESSES[:3]) as bob_devices,
        devices(fleet, stranger["token"], ADDRESSES[3:4]) as [outsider],
    ):
        async with devices(fleet, alice["token"], ADDRESSES[4:6]) as alice_devices:
            await until(lambda: all(d.presence for d in bob_devices))
            answer = await bob_devices[0].client.call(
                "presence:get", {"userIds": [alice_id]}, timeout=5
            )
            assert answer["presence"][alice_id]["online"] is True
            assert all(not d.presence for d in alice_devices)  # not told about themselves
        # Both of Alice's sockets closed: one offline transition, after the last of them.
        await until(lambda: all(len(d.presence) == 2 for d in bob_devices))
        await asyncio.sleep(0.5)  # a third transition, were one sent, would arrive meanwhile
        for device in bob_devices:
            assert [kind for kind, _ in device.presence] == ["online", "offline"]
            assert {data["userId"] for _, data in device.presence} == {alice_id}
            assert device.presence[1][1]["lastSeenAt"]
        assert outsider.presence == []
        answer = await bob_devices[0].client.call(
            "presence:get", {"userIds": [alice_id]}, timeout=5
        )
        assert answer["presence"][alice_id]["online"] is False
        assert answer["presence"][alice_id]["lastSeenAt"]


async def test_typing_stops_by_itself_and_when_the_typist_drops(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob = await asyncio.gather(register(http, tag="rt"), register(http, tag="rt"))
    conversation_id = await direct_conversation(http, alice, bob)
    async with devices(fleet, bob["token"], ADDRESSES[:1]) as [watcher]:
        async with devices(fleet, alice["token"], ADDRESSES[1:3]) as [typist, dropper]:
            started = time.monotonic()
            await typist.client.call("typing:start", {"conversationId": conversation_id}, timeout=5)
            await until(lambda: len(watcher.stopped_typing) == 1, timeout=10)
            assert time.monotonic() - started >= 4  # nobody said stop: it expired
            await dropper.client.call(
                "typing:start", {"conversationId": conversation_id}, timeout=5
            )
            await until(lambda: len(watcher.typing) == 2)
        # The dropper disconnected mid-typing (on leaving the block): stopped at once.
        await until(lambda: len(watcher.stopped_typing) == 2, timeout=3)


async def test_logout_disconnects_that_sessions_sockets_only(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice = await register(http, tag="rt")
    body = {"email": alice["user"]["email"], "password": "s3cret-pass"}
    async with http.post("/api/auth/login", json=body) as response:
        other_session = await response.json()
    async with (
        devices(fleet, alice["token"], ADDRESSES[:2]) as revoked,
        devices(fleet, other_session["token"], ADDRESSES[2:3]) as [kept],
    ):
        headers = {"Authorization": f"Bearer {alice['token']}"}
        async with http.post("/api/auth/logout", headers=headers) as response:
            assert response.status == 204
        async with asyncio.timeout(10):
            await asyncio.gather(*(device.disconnected.wait() for device in revoked))
        await asyncio.sleep(0.3)  # were the other session cut too, it would be by now
        assert kept.client.connected


async def test_a_socket_that_floods_is_rate_limited_in_its_acks(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob = await asyncio.gather(register(http, tag="rt"), register(http, tag="rt"))
    conversation_id = await direct_conversation(http, alice, bob)
    async with devices(fleet, alice["token"], ADDRESSES[:1]) as [flooder]:
        acks = await asyncio.gather(
            *(
                flooder.client.call("typing:start", {"conversationId": conversation_id}, timeout=10)
                for _ in range(80)
            )
        )
    codes = [ack["error"]["code"] for ack in acks if not ack["ok"]]
    assert sum(ack["ok"] for ack in acks) >= 30  # the burst a socket may send at once
    assert codes
    assert set(codes) == {"rate_limited"}


async def test_a_socket_that_closed_a_conversation_still_receives_its_messages(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob = await asyncio.gather(register(http, tag="rt"), register(http, tag="rt"))
    conversation_id = await direct_conversation(http, alice, bob)
    async with devices(fleet, bob["token"], ADDRESSES[:1]) as [phone]:
        room = {"conversationId": conversation_id}
        assert (await phone.client.call("conversation:join", room, timeout=15))["ok"] is True
        assert (await phone.client.call("conversation:leave", room, timeout=15))["ok"] is True
        headers = {"Authorization": f"Bearer {alice['token']}"}
        path = f"/api/chat/{conversation_id}/messages"
        async with http.post(path, json={"content": "still here?"}, headers=headers) as sent:
            assert sent.status == 201
        await until(lambda: [m["content"] for m in phone.received] == ["still here?"])


async def test_once_both_took_part_each_is_told_the_others_presence_at_once(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob = await asyncio.gather(register(http, tag="rt"), register(http, tag="rt"))
    conversation_id = await direct_conversation(http, alice, bob)  # Alice took part, Bob not yet
    async with (
        devices(fleet, alice["token"], ADDRESSES[:1]) as [alices],
        devices(fleet, bob["token"], ADDRESSES[1:2]) as [bobs],
    ):
        hidden = await alices.client.call("presence:get", {"userIds": [bob["user"]["id"]]})
        assert hidden["notFound"] == [bob["user"]["id"]]
        assert alices.presence == []
        assert bobs.presence == []

        headers = {"Authorization": f"Bearer {bob['token']}"}
        path = f"/api/chat/{conversation_id}/messages"
        async with http.post(path, json={"content": "hi"}, headers=headers) as answered:
            assert answered.status == 201
        await until(lambda: bool(alices.presence) and bool(bobs.presence))
        assert alices.presence == [("online", {"userId": bob["user"]["id"]})]
        assert bobs.presence == [("online", {"userId": alice["user"]["id"]})]
