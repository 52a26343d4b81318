"""Everything the gateway takes from python-socketio and python-engineio beyond their public API.

The documented API leaves four things out that the gateway needs:

- **One frame per event, not per recipient.** python-socketio's room emit costs, per recipient,
  a task, a hop through engine.io's queue into the socket's writer task, an engine.io encode
  and a WebSocket frame build. ``RoomBroadcast`` builds the frame once and writes it to each
  socket's TCP transport, which needs each engine.io session's transport and state
  (``EngineSessions.route``).
- **No per-recipient deflate.** aiohttp accepts permessage-deflate by default and engineio has
  no switch for it, so a room emit to N sockets would be deflated N times (about 3x fewer
  deliveries). ``install_websocket_transport`` installs engineio's own aiohttp WebSocket
  transport with ``compress=False``, and records each open WebSocket's TCP transport.
- **Lifecycle events out of clients' reach.** python-socketio dispatches a client's ``EVENT``
  packet by name, so a client emitting ``disconnect`` or ``connect`` would run the server's own
  handlers (``ClientEventServer``).
- **A bounded shutdown.** engineio's disconnect-all waits on every session's CLOSE packet,
  which a polling client that never polls again never takes (``close_sessions``).

Written for python-socketio 5.18 and python-engineio 4.15, pinned to those minor versions in
``services/gateway/pyproject.toml``. ``tests/unit/test_gateway_socketio_internals.py`` checks
each attribute, signature and behaviour used here against the installed packages, and
``tests/integration/test_gateway_room_broadcast.py`` delivers to polling, mid-upgrade and
WebSocket sockets in one room: an upgrade that changes any of them fails those tests rather
than production. Nothing else in the gateway touches either library's internals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import socketio
from aiohttp.web import WebSocketResponse
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp

from contracts.sockets import ack_error

WRITTEN_FOR = {"python-socketio": "5.18", "python-engineio": "4.15"}
"""The minor versions this module was written and tested for (pinned in the gateway's
pyproject.toml)."""

NAMESPACE = "/"

# Names the server raises itself; a client event carrying one must never reach their handlers.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error"})

PacketQueue = asyncio.Queue[Any]
"""An engine.io session's outgoing packet queue: what its writer (polling or WebSocket) sends."""


class WebSocketTransports:
    """The TCP transport under each engine.io session's open WebSocket, by engine.io sid."""

    def __init__(self) -> None:
        self._by_sid: dict[str, asyncio.Transport] = {}

    def opened(self, eio_sid: str, transport: asyncio.Transport) -> None:
        self._by_sid[eio_sid] = transport

    def closed(self, eio_sid: str) -> None:
        self._by_sid.pop(eio_sid, None)

    def get(self, eio_sid: str) -> asyncio.Transport | None:
        return self._by_sid.get(eio_sid)


class ClientEventServer(socketio.AsyncServer):  # type: ignore[misc]
    """A Socket.IO server that refuses client events named like its lifecycle events.

    Such an event (``connect``, ``disconnect``, ``connect_error``, or a name that is no
    string) is dropped, and answered ``invalid`` when it asks for an ack. This overrides
    ``_handle_event``, python-socketio 5.x's dispatch of client events, and answers with
    ``_send_packet``.
    """

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: list[Any]
    ) -> None:
        name = data[0] if data else None
        if not isinstance(name, str) or name in RESERVED_EVENTS:
            if id is not None:
                refusal = ack_error("invalid", f"{name!r} is not an event a client may send")
                await self._send_packet(
                    eio_sid,
                    self.packet_class(
                        socketio.packet.ACK, namespace=namespace or NAMESPACE, id=id, data=[refusal]
                    ),
                )
            return
        await super()._handle_event(eio_sid, namespace, id, data)


def install_websocket_transport(sio: socketio.AsyncServer, transports: WebSocketTransports) -> None:
    """engineio's aiohttp WebSocket transport with permessage-deflate off, registering each
    open WebSocket's TCP transport in ``transports`` under its engine.io sid."""

    class UncompressedWebSocket(engineio_aiohttp.WebSocket):  # type: ignore[misc]
        async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
            request = environ["aiohttp.request"]
            self._sock = WebSocketResponse(
                max_msg_size=self.server.max_http_buffer_size, compress=False
            )
            await self._sock.prepare(request)
            self.environ = environ
            # engineio hands over its socket's bound ``_websocket_handler``.
            eio_sid: str = self.handler.__self__.sid
            if request.transport is not None:
                transports.opened(eio_sid, request.transport)
            try:
                await self.handler(self)
            finally:
                transports.closed(eio_sid)
            return self._sock

    sio.eio._async = {**sio.eio._async, "websocket": UncompressedWebSocket}


def participants(sio: socketio.AsyncServer, room: str | list[str]) -> Iterable[tuple[str, str]]:
    """``(sid, engine.io sid)`` of this instance's sockets in ``room`` (or in any of the rooms,
    once each)."""
    found: Iterable[tuple[str, str]] = sio.manager.get_participants(NAMESPACE, room)
    return found


class EngineSessions:
    """Where a packet for an engine.io session goes: straight onto its WebSocket, or into
    engine.io's own queue."""

    def __init__(self, sio: socketio.AsyncServer, transports: WebSocketTransports) -> None:
        self._eio = sio.eio
        self._transports = transports

    def route(self, eio_sid: str) -> asyncio.Transport | PacketQueue | None:
        """The TCP transport, when the session is on an open WebSocket with nothing queued in
        engine.io (so a frame written there overtakes nothing); else its packet queue (polling,
        still upgrading, or packets waiting); ``None`` when the session is closed or closing."""
        socket = self._eio.sockets.get(eio_sid)
        if socket is None or socket.closed or socket.closing:
            return None
        queue: PacketQueue = socket.queue
        transport = self._transports.get(eio_sid)
        if transport is not None and socket.upgraded and not socket.upgrading and queue.empty():
            return transport
        return queue


def message_packet(text: bytes) -> object:
    """An engine.io MESSAGE packet carrying a Socket.IO packet's ``text``, for a ``PacketQueue``."""
    return eio_packet.Packet(eio_packet.MESSAGE, text.decode())


async def close_sessions(sio: socketio.AsyncServer, grace_seconds: float) -> None:
    """End every engine.io session, each sending its CLOSE packet, waiting at most
    ``grace_seconds``: a polling client that never polls again never takes its CLOSE, and
    engineio's own disconnect-all would wait for it without bound."""
    closing = [
        asyncio.create_task(socket.close(reason=sio.eio.reason.SERVER_DISCONNECT))
        for socket in list(sio.eio.sockets.values())
    ]
    if not closing:
        return
    _closed, stuck = await asyncio.wait(closing, timeout=grace_seconds)
    for task in stuck:
        task.cancel()
    sio.eio.sockets = {}
