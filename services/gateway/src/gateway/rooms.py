"""Room names, and moving a user's local sockets in and out of rooms.

A socket is in its user's room, its session's room and a room per conversation it belongs to;
fan-out emits to rooms, so one message is encoded once however many devices receive it.
"""

from __future__ import annotations

from uuid import UUID

import socketio

from gateway.socketio_internals import participants


def user_room(user_id: UUID | str) -> str:
    return f"user:{user_id}"


def session_room(session_id: UUID | str) -> str:
    return f"session:{session_id}"


def conversation_room(conversation_id: UUID | str) -> str:
    return f"conversation:{conversation_id}"


def local_sockets(sio: socketio.AsyncServer, room: str) -> list[str]:
    return [sid for sid, _ in participants(sio, room)]


async def add_user_to_room(sio: socketio.AsyncServer, user_id: UUID, room: str) -> None:
    for sid in local_sockets(sio, user_room(user_id)):
        await sio.enter_room(sid, room)


async def remove_user_from_room(sio: socketio.AsyncServer, user_id: UUID, room: str) -> None:
    for sid in local_sockets(sio, user_room(user_id)):
        await sio.leave_room(sid, room)


class SocketIoRooms:
    """Rooms of this instance's python-socketio server, for the use cases."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    async def enter(self, sid: str, room: str) -> None:
        await self._sio.enter_room(sid, room)
