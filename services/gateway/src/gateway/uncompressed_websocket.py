"""Engine.IO's aiohttp WebSocket transport with permessage-deflate off, registering its socket.

aiohttp accepts permessage-deflate by default and python-engineio offers no switch for it, so a
room emit to N sockets would be deflated N times (a bare python-socketio room broadcast to 200
sockets delivers about 3x more with it off). This installs the same transport with
``compress=False``, and records each open WebSocket's TCP transport under its engine.io sid in
``WebSocketTransports``, so ``RoomBroadcast`` can write one prepared frame to it; everything
else is engineio's own.
"""

from __future__ import annotations

from typing import Any

import socketio
from aiohttp.web import WebSocketResponse
from engineio.async_drivers import aiohttp as engineio_aiohttp

from gateway.room_broadcast import WebSocketTransports


def disable_websocket_compression(
    sio: socketio.AsyncServer, transports: WebSocketTransports | None = None
) -> None:
    registry = transports if transports is not None else WebSocketTransports()

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
                registry.opened(eio_sid, request.transport)
            try:
                await self.handler(self)
            finally:
                registry.closed(eio_sid)
            return self._sock

    sio.eio._async = {**sio.eio._async, "websocket": UncompressedWebSocket}
