"""The bare python-socketio reference of bench/gateway/run.py: the room broadcast alone.

    python bare_python_server.py <port>

A ``socketio.AsyncServer`` on aiohttp and uvloop, as the gateway runs, with WebSocket
permessage-deflate off the way the gateway turns it off
(``gateway.socketio_internals.install_websocket_transport``). Every socket joins one room;
``message:send {conversationId, content, clientMessageId}`` emits ``message:received`` (a
message shaped like the fleet's) to that room and acks ``{ok: true, message}``
(``conversation:join`` acks ``{ok: true}``): no auth check, no storage, no broker. Prints
"listening" once it accepts connections; exits when stdin closes.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import socketio
import uvloop
from aiohttp import web

from gateway.socketio_internals import WebSocketTransports, install_websocket_transport

ROOM = "conversation"


def build() -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", http_compression=False)
    install_websocket_transport(sio, WebSocketTransports())
    seq = 0
    senders: dict[str, str] = {}

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        senders[sid] = str((auth or {}).get("token", "anonymous"))
        await sio.enter_room(sid, ROOM)

    async def disconnect(sid: str, *args: Any) -> None:
        senders.pop(sid, None)

    async def message_send(sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        message: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "conversationId": payload.get("conversationId"),
            "seq": seq,
            "senderId": senders.get(sid),
            "clientMessageId": payload.get("clientMessageId"),
            "content": payload.get("content"),
            "attachments": [],
            "createdAt": datetime.now(UTC).isoformat(),
            "editedAt": None,
            "deletedAt": None,
        }
        await sio.emit("message:received", message, room=ROOM)
        return {"ok": True, "message": message}

    async def conversation_join(sid: str, payload: Any = None) -> dict[str, Any]:
        return {"ok": True}  # in the one room since connecting

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)
    sio.on("message:send", message_send)
    sio.on("conversation:join", conversation_join)
    app = web.Application()
    sio.attach(app)
    return app


async def main(port: int) -> None:
    runner = web.AppRunner(build(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("listening", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.create_future()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def watch_stdin() -> None:
        while await reader.read(4096):
            pass
        stdin_closed.set_result(None)

    watcher = asyncio.create_task(watch_stdin())
    try:
        await stdin_closed
    finally:
        watcher.cancel()
        await runner.cleanup()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
