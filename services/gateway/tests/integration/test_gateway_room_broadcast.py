"""``RoomBroadcast`` with real python-socketio clients on every transport, and a real slow socket.

The server is the gateway's own Socket.IO server (``create_socket_server``: compression off,
WebSocket transports registered) on a real port; clients are ``socketio.AsyncClient`` over
WebSocket only, long-polling only, and polling upgraded to WebSocket. The slow socket is a raw
TCP client with a tiny receive buffer that does the WebSocket and Engine.IO handshakes by hand
and then stops reading, so the server's transport really backs up.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import os
import socket
import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer

from devstack.waiting import until
from gateway.room_broadcast import RoomBroadcast, socketio_event_text, websocket_text_frame
from gateway.socketio_internals import WebSocketTransports
from gateway.sockets import create_socket_server

ROOM = "room:everyone"
OTHER = "room:other"


class Note(msgspec.Struct, rename="camel"):
    seq: int
    text_body: str = ""


@dataclass
class Server:
    url: str
    sio: socketio.AsyncServer
    broadcast: RoomBroadcast
    disconnected: list[str] = field(default_factory=list)
    sids: dict[str, str] = field(default_factory=dict)
    """Socket.IO sid by the name each client gave in its auth."""

    async def wait_for(self, name: str) -> str:
        """The sid of the client that connected as ``name``, once it has."""
        return await until(lambda: self.sids.get(name), timeout=5, interval=0.01, what=name)


@contextlib.asynccontextmanager
async def running_server(*, drop_above: int, cut_above: int) -> AsyncIterator[Server]:
    transports = WebSocketTransports()
    sio = create_socket_server("*", 64 * 1024, transports)
    app = web.Application()
    sio.attach(app, socketio_path="socket.io")
    broadcast = RoomBroadcast(
        sio, transports, drop_above_bytes=drop_above, cut_above_bytes=cut_above
    )
    server = Server("", sio, broadcast)

    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None) -> None:
        name = (auth or {})["name"]
        await sio.enter_room(sid, ROOM)
        if name.startswith("both"):
            await sio.enter_room(sid, OTHER)
        server.sids[name] = sid

    async def disconnect(sid: str, reason: object = None) -> None:
        server.disconnected.append(sid)

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)
    async with TestServer(app, host="127.0.0.1") as http:
        server.url = str(http.make_url("")).rstrip("/")
        yield server
        if sio.eio.sockets:
            await sio.eio.disconnect()


@dataclass
class Listener:
    name: str
    client: socketio.AsyncClient
    got: list[dict[str, Any]] = field(default_factory=list)


def heard_at_least(listeners: list[Listener], count: int) -> bool:
    return all(len(heard.got) >= count for heard in listeners)


@contextlib.asynccontextmanager
async def listener(server: Server, name: str, transports: list[str]) -> AsyncIterator[Listener]:
    client = socketio.AsyncClient(reconnection=False)
    heard = Listener(name, client)
    client.on("note", heard.got.append)
    await client.connect(server.url, auth={"name": name}, transports=transports, wait_timeout=5)
    await server.wait_for(name)
    try:
        yield heard
    finally:
        # Closed from the server's side: a long-polling client's own disconnect would wait
        # for its held GET until the next ping (25 s).
        await server.sio.disconnect(server.sids[name])
        await client.disconnect()


def test_frames_are_what_socket_io_and_rfc_6455_say() -> None:
    assert socketio_event_text("note", b'{"seq":1}') == b'2["note",{"seq":1}]'
    assert websocket_text_frame(b"42[]") == b"\x81\x0442[]"
    medium = websocket_text_frame(b"x" * 300)
    assert medium[:4] == b"\x81\x7e\x01\x2c"
    assert len(medium) == 304
    large = websocket_text_frame(b"x" * 70000)
    assert large[:2] == b"\x81\x7f"
    assert struct.unpack("!Q", large[2:10]) == (70000,)


async def test_every_transport_gets_each_event_once_in_order_and_the_skipped_socket_none() -> None:
    async with (
        running_server(drop_above=1 << 20, cut_above=1 << 24) as server,
        listener(server, "websocket", ["websocket"]) as websocket,
        listener(server, "polling", ["polling"]) as polling,
        listener(server, "upgraded", ["polling", "websocket"]) as upgraded,
        listener(server, "both-rooms", ["websocket"]) as both,
        listener(server, "skipped", ["websocket"]) as skipped,
    ):
        await until(lambda: upgraded.client.transport() == "websocket")
        everyone = [websocket, polling, upgraded, both]
        # In bursts of 10: python-engineio's client refuses a long-poll payload of more than
        # 16 packets, and a burst written at once is answered in one payload.
        for burst in range(5):
            for seq in range(burst * 10 + 1, burst * 10 + 11):
                reached = server.broadcast.send(
                    "note",
                    Note(seq=seq, text_body="héllo ✓"),
                    [ROOM, OTHER],
                    skip_sid=server.sids["skipped"],
                )
                assert reached == 4
            await until(functools.partial(heard_at_least, everyone, burst * 10 + 10))
        await asyncio.sleep(0.2)  # a duplicate would arrive meanwhile
        for heard in everyone:
            assert heard.got == [{"seq": s, "textBody": "héllo ✓"} for s in range(1, 51)], (
                heard.name
            )
        assert skipped.got == []


class MidUpgrade:
    """An Engine.IO client by hand, stopped in the middle of its upgrade to WebSocket: it has
    probed the WebSocket (``2probe`` answered ``3probe``) but not yet sent ``5``, so engine.io
    holds what is sent to it until the upgrade completes."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self._url = url
        self.sid = ""
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    def _endpoint(self, transport: str) -> str:
        sid = f"&sid={self.sid}" if self.sid else ""
        return f"{self._url}/socket.io/?EIO=4&transport={transport}{sid}"

    async def poll(self) -> str:
        async with self._http.get(self._endpoint("polling")) as response:
            return await response.text()

    async def probe(self, name: str) -> None:
        opened = await self.poll()
        assert opened.startswith("0"), opened
        self.sid = json.loads(opened[1:])["sid"]
        async with self._http.post(
            self._endpoint("polling"), data="40" + json.dumps({"name": name})
        ) as response:
            assert response.status == 200
        assert (await self.poll()).startswith("40")
        self.ws = await self._http.ws_connect(self._endpoint("websocket"))
        await self.ws.send_str("2probe")
        assert await self.ws.receive_str(timeout=5) == "3probe"

    async def nothing_on_websocket(self, seconds: float) -> None:
        assert self.ws is not None
        with pytest.raises(TimeoutError):
            got = await self.ws.receive_str(timeout=seconds)
            raise AssertionError(f"{got!r} reached the WebSocket before the upgrade")

    async def upgrade(self) -> None:
        assert self.ws is not None
        await self.ws.send_str("5")

    async def notes(self, count: int) -> list[int]:
        """The seqs of the next ``count`` notes on the WebSocket (NOOPs and pings skipped)."""
        assert self.ws is not None
        seqs: list[int] = []
        async with asyncio.timeout(5):
            while len(seqs) < count:
                text = await self.ws.receive_str()
                if text.startswith("42"):
                    event, body = json.loads(text[2:])
                    assert event == "note"
                    seqs.append(body["seq"])
                elif text == "2":
                    await self.ws.send_str("3")
        return seqs


async def test_polling_mid_upgrade_and_websocket_sockets_in_one_room_get_every_event_once() -> None:
    """The three states ``socketio_internals.EngineSessions.route`` tells apart, in one room.
    An engine.io upgrade that changes how a socket is held during its upgrade (``upgrading``,
    the queue drained onto the WebSocket once it completes) fails here."""
    async with (
        running_server(drop_above=1 << 20, cut_above=1 << 24) as server,
        listener(server, "websocket", ["websocket"]) as websocket,
        listener(server, "polling", ["polling"]) as polling,
        aiohttp.ClientSession() as http,
    ):
        mid = MidUpgrade(http, server.url)
        await mid.probe("mid-upgrade")
        await server.wait_for("mid-upgrade")
        assert server.broadcast.send("note", Note(seq=1), ROOM) == 3
        # Held for the upgrade: neither the WebSocket nor a long-poll (only a NOOP) has it.
        await mid.nothing_on_websocket(0.2)
        assert await mid.poll() == "6"
        await mid.upgrade()
        assert await mid.notes(1) == [1]
        # Upgraded, its queue drained: now it takes frames straight away, as the other
        # WebSocket does (one write each).
        writes = server.broadcast.writes
        assert server.broadcast.send("note", Note(seq=2), ROOM) == 3
        assert await mid.notes(1) == [2]
        await until(lambda: len(websocket.got) == 2 and len(polling.got) == 2)
        assert server.broadcast.writes == writes + 2
        await asyncio.sleep(0.2)  # a duplicate would arrive meanwhile
        for heard in (websocket, polling):
            assert [n["seq"] for n in heard.got] == [1, 2], heard.name
        assert mid.ws is not None
        await mid.ws.close()


async def test_events_of_one_loop_turn_reach_each_websocket_in_one_write_in_order() -> None:
    async with (
        running_server(drop_above=1 << 20, cut_above=1 << 24) as server,
        listener(server, "one", ["websocket"]) as one,
        listener(server, "two", ["websocket"]) as two,
    ):
        for seq in range(1, 31):  # one loop turn: nothing is written until it ends
            assert server.broadcast.send("note", Note(seq=seq), ROOM) == 2
        assert server.broadcast.writes == 0
        await until(lambda: len(one.got) == 30 and len(two.got) == 30)
        assert server.broadcast.writes == 2
        server.broadcast.send("note", Note(seq=31), ROOM)  # the next turn's: a write of its own
        await until(lambda: len(one.got) == 31 and len(two.got) == 31)
        assert server.broadcast.writes == 4
        for heard in (one, two):
            assert [n["seq"] for n in heard.got] == list(range(1, 32))


async def test_a_socket_that_left_the_room_gets_nothing_more() -> None:
    async with (
        running_server(drop_above=1 << 20, cut_above=1 << 24) as server,
        listener(server, "stays", ["websocket"]) as stays,
        listener(server, "leaves", ["websocket"]) as leaves,
    ):
        server.broadcast.send("note", Note(seq=1), ROOM)
        await until(lambda: len(leaves.got) == 1 and len(stays.got) == 1)
        await server.sio.leave_room(server.sids["leaves"], ROOM)
        assert server.broadcast.send("note", Note(seq=2), ROOM) == 1
        await until(lambda: len(stays.got) == 2)
        await asyncio.sleep(0.1)  # an event that still reached the socket would arrive meanwhile
        assert [n["seq"] for n in leaves.got] == [1]


class SlowSocket:
    """A WebSocket Engine.IO client that reads its handshakes and then nothing at all."""

    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self._name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    async def open(self) -> None:
        host, port = self._url.removeprefix("http://").split(":")
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, (host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(self.sock, request.encode())
        buffer = b""
        async with asyncio.timeout(5):
            while b'"sid"' not in buffer:  # the 101 response, then Engine.IO's open packet
                buffer += await loop.sock_recv(self.sock, 4096)
        connect = b"40" + json.dumps({"name": self._name}).encode()
        await loop.sock_sendall(self.sock, masked_text_frame(connect))

    def close(self) -> None:
        self.sock.close()


def masked_text_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


async def test_a_slow_socket_loses_droppable_events_then_is_cut_while_others_get_everything() -> (
    None
):
    drop_above, cut_above = 256 * 1024, 2 * 1024 * 1024
    async with running_server(drop_above=drop_above, cut_above=cut_above) as server:
        slow = SlowSocket(server.url, f"slow-{uuid.uuid4().hex[:6]}")
        try:
            await slow.open()
            slow_sid = await server.wait_for(slow._name)
            async with listener(server, "fast", ["websocket"]) as fast:
                big = Note(seq=0, text_body="x" * 32 * 1024)
                sent = 0
                # Messages keep going to the slow socket until its unsent bytes pass the
                # drop threshold; then a droppable event skips it and still reaches the fast one.
                async with asyncio.timeout(10):
                    while True:
                        sent += 1
                        assert server.broadcast.send("note", big, ROOM) == 2
                        await asyncio.sleep(0)
                        if server.broadcast.send("note", Note(seq=-1), ROOM, droppable=True) == 1:
                            break
                assert server.broadcast.dropped == 1
                assert slow_sid not in server.disconnected
                # Past the cut threshold the slow connection is aborted, not buffered further.
                async with asyncio.timeout(10):
                    while server.broadcast.cut == 0:
                        server.broadcast.send("note", big, ROOM)
                        await asyncio.sleep(0)
                await until(lambda: slow_sid in server.disconnected)
                assert server.broadcast.send("note", Note(seq=-2), ROOM) == 1
                await until(lambda: any(n["seq"] == -2 for n in fast.got))
                assert [n["seq"] for n in fast.got].count(-1) == sent
        finally:
            slow.close()


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_a_disconnected_socket_is_reached_no_more(transports: list[str]) -> None:
    async with (
        running_server(drop_above=1 << 20, cut_above=1 << 24) as server,
        listener(server, "gone", transports) as gone,
    ):
        sid = server.sids["gone"]
        await server.sio.disconnect(sid)
        await until(lambda: sid in server.disconnected)
        assert server.broadcast.send("note", Note(seq=1), ROOM) == 0
        await asyncio.sleep(0.1)  # an event that still reached the socket would arrive meanwhile
        assert gone.got == []
