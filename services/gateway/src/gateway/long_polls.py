"""Engine.IO long-poll requests in flight, so a shutdown can end them instead of waiting.

A polling client's pending GET is held for up to ping interval + timeout (45 s). When a client
closes its session it does not always answer that GET, and python-engineio then keeps the
handler waiting on a queue no session owns any more: aiohttp's graceful drain would wait for it
until the process is killed. Cancelling these handlers at shutdown is safe: the client simply
reconnects (to another instance).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from servicekit.http_app import Handler

SOCKET_IO_PREFIX = "/socket.io/"


class LongPolls:
    def __init__(self) -> None:
        self._in_flight: set[asyncio.Task[object]] = set()

    @web.middleware
    async def track(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is None or request.method != "GET" or not request.path.startswith(SOCKET_IO_PREFIX):
            return await handler(request)
        self._in_flight.add(task)
        try:
            return await handler(request)
        finally:
            self._in_flight.discard(task)

    def cancel_all(self) -> None:
        for task in self._in_flight:
            task.cancel()
