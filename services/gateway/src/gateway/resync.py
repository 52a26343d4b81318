"""``sync:required`` to every socket of this instance once its broker connection is back.

The instance's queue is exclusive: while the connection is down the queue does not exist, so
whatever was published meanwhile never reaches this instance's sockets, though they stayed
connected and would otherwise never ask. aio-pika calls the connection's reconnect callbacks
once it has declared the queue again and consumes from it, so a ``sync`` the client makes on
this event covers everything from then on (docs/realtime.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aio_pika.abc import AbstractRobustConnection

from contracts.sockets import ServerEvent, SyncRequiredPayload
from servicekit.logs import get_logger

_log = get_logger("gateway.resync")


class ResyncOnReconnect:
    def __init__(self, sio: Any) -> None:
        self._sio = sio
        self._emits: set[asyncio.Task[None]] = set()

    @classmethod
    def watching(cls, connection: AbstractRobustConnection, sio: Any) -> ResyncOnReconnect:
        resync = cls(sio)
        connection.reconnect_callbacks.add(resync._reconnected)
        return resync

    def unwatch(self, connection: AbstractRobustConnection) -> None:
        connection.reconnect_callbacks.discard(self._reconnected)

    def _reconnected(self, *_: object) -> None:
        _log.warning("broker_reconnected_sockets_told_to_sync")
        payload = msgspec.to_builtins(SyncRequiredPayload())
        task = asyncio.create_task(self._sio.emit(ServerEvent.SYNC_REQUIRED, payload))
        self._emits.add(task)
        task.add_done_callback(self._emits.discard)
