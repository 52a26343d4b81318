"""Engine.IO's aiohttp WebSocket transport with permessage-deflate turned off.

aiohttp accepts permessage-deflate by default and python-engineio offers no switch for it, so a
room emit to N sockets would be deflated N times (a bare python-socketio room broadcast to 200
sockets delivers about 3x more with it off). This installs the same transport with
``compress=False``; everything else is engineio's own.
"""

from __future__ import annotations

from typing import Any

import socketio
from aiohttp.web import WebSocketResponse
from engineio.async_drivers import aiohttp as engineio_aiohttp


class UncompressedWebSocket(engineio_aiohttp.WebSocket):  # type: ignore[misc]
    async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False
        )
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock


def disable_websocket_compression(sio: socketio.AsyncServer) -> None:
    sio.eio._async = {**sio.eio._async, "websocket": UncompressedWebSocket}
