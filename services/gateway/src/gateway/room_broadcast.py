"""One server event to the sockets of some rooms: encoded once, written straight to each socket.

python-socketio's room emit costs, per recipient, a task, a hop through engine.io's queue into
the socket's writer task, an engine.io encode and a WebSocket frame build. Here the Socket.IO
packet and its WebSocket frame are built once per event, and a recipient on an open WebSocket
gets those same bytes. Frames for one socket are corked until the end of the loop turn and
written together: under load the consumer hands over several events per turn, and each socket
then costs one ``transport.write`` (or ``writelines``: one vectored send, the shared frames not
copied per socket) for all of them, not one per event. A
socket that is long-polling, still upgrading, or has packets waiting in engine.io's queue gets
the packet through that queue (``put_nowait``, no task), so nothing overtakes what engine.io
already holds for it. (The uncork is scheduled before any later put wakes engine.io's writer,
so a corked frame still goes out before what is queued after it.)

Backpressure, per socket, on the bytes its transport has not sent yet (corked ones included):
above ``drop_above_bytes`` an event marked droppable (typing, presence) is skipped for that
socket; above ``cut_above_bytes`` the connection is aborted instead of buffering without bound.
A cut client reconnects and catches up with ``sync``, so a message is never silently lost.

Which sessions may take a frame straight away, and the engine.io packet for the others, come
from ``gateway.socketio_internals``, the one module that relies on the libraries' internals.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Collection, Iterable

import msgspec
import socketio

from gateway.socketio_internals import (
    EngineSessions,
    WebSocketTransports,
    message_packet,
    participants,
)
from servicekit.logs import get_logger

_log = get_logger("gateway.room_broadcast")

DROP_ABOVE_BYTES = 256 * 1024
CUT_ABOVE_BYTES = 4 * 1024 * 1024
_TEXT_FIN = 0x81  # FIN + text opcode; server frames are never masked (RFC 6455 5.1)


def websocket_text_frame(payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", _TEXT_FIN, length)
    elif length < 65536:
        header = struct.pack("!BBH", _TEXT_FIN, 126, length)
    else:
        header = struct.pack("!BBQ", _TEXT_FIN, 127, length)
    return header + payload


def socketio_event_text(event: str, body: bytes) -> bytes:
    """A Socket.IO EVENT packet on the default namespace, ``2["event",body]``, as UTF-8."""
    return b"2[" + msgspec.json.encode(event) + b"," + body + b"]"


class RoomBroadcast:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        transports: WebSocketTransports,
        *,
        drop_above_bytes: int = DROP_ABOVE_BYTES,
        cut_above_bytes: int = CUT_ABOVE_BYTES,
    ) -> None:
        self._sio = sio
        self._sessions = EngineSessions(sio, transports)
        self._drop_above = drop_above_bytes
        self._cut_above = cut_above_bytes
        self._corked: dict[asyncio.Transport, list[bytes]] = {}
        self._corked_bytes: dict[asyncio.Transport, int] = {}
        self.dropped = 0
        self.cut = 0
        self.writes = 0

    def send(
        self,
        event: str,
        payload: object,
        room: str | list[str],
        skip_sid: str | Collection[str] | None = None,
        *,
        droppable: bool = False,
    ) -> int:
        """Emit ``event`` with ``payload`` (a contract Struct) to every local socket in ``room``
        (or in any of the rooms, once each), except ``skip_sid``; the number reached."""
        text = socketio_event_text(event, msgspec.json.encode(payload))
        skip = {skip_sid} if isinstance(skip_sid, str) else set(skip_sid or ())
        return self._send_text(text, participants(self._sio, room), skip, droppable)

    def _send_text(
        self,
        text: bytes,
        recipients: Iterable[tuple[str, str]],
        skip: set[str],
        droppable: bool,
    ) -> int:
        frame = websocket_text_frame(b"4" + text)
        queued: object | None = None
        route = self._sessions.route
        reached = 0
        for sid, eio_sid in recipients:
            if sid in skip:
                continue
            way = route(eio_sid)
            if way is None:
                continue
            if isinstance(way, asyncio.Queue):
                if droppable and way.qsize() > 64:
                    self.dropped += 1
                    continue
                if queued is None:
                    queued = message_packet(text)
                way.put_nowait(queued)
            else:
                if way.is_closing():
                    continue
                backlog = way.get_write_buffer_size() + self._corked_bytes.get(way, 0)
                if backlog > self._cut_above:
                    self._cut_off(sid, way, backlog)
                    continue
                if droppable and backlog > self._drop_above:
                    self.dropped += 1
                    continue
                self._cork(way, frame)
            reached += 1
        return reached

    def _cork(self, transport: asyncio.Transport, frame: bytes) -> None:
        held = self._corked.get(transport)
        if held is None:
            if not self._corked:
                asyncio.get_running_loop().call_soon(self._uncork)
            self._corked[transport] = [frame]
            self._corked_bytes[transport] = len(frame)
        else:
            held.append(frame)
            self._corked_bytes[transport] += len(frame)

    def _uncork(self) -> None:
        """Write each socket's corked frames in one go, in the order they were sent."""
        corked, self._corked = self._corked, {}
        self._corked_bytes = {}
        for transport, frames in corked.items():
            if transport.is_closing():
                continue
            if len(frames) == 1:
                transport.write(frames[0])
            else:
                # Vectored: the shared frames go out as they are, with no copy per socket.
                transport.writelines(frames)
            self.writes += 1

    def _cut_off(self, sid: str, transport: asyncio.Transport, backlog: int) -> None:
        self.cut += 1
        _log.warning("slow_socket_cut", sid=sid, unsent_bytes=backlog)
        self._corked.pop(transport, None)
        self._corked_bytes.pop(transport, None)
        transport.abort()
