"""What ``gateway.socketio_internals`` relies on in python-socketio and python-engineio, checked
against the installed packages: the pinned versions, and each private attribute, signature and
behaviour the adapter uses. An upgrade that moves any of them fails here, by name."""

from __future__ import annotations

import asyncio
import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import socketio
from engineio import async_socket
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp
from packaging.requirements import Requirement

from gateway.socketio_internals import (
    WRITTEN_FOR,
    EngineSessions,
    WebSocketTransports,
    install_websocket_transport,
    message_packet,
)

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


@pytest.mark.parametrize("package", sorted(WRITTEN_FOR))
def test_the_installed_version_is_the_one_the_adapter_was_written_for(package: str) -> None:
    installed = version(package)
    assert installed.startswith(WRITTEN_FOR[package] + "."), (
        f"{package} {installed} is installed; gateway.socketio_internals was written for "
        f"{WRITTEN_FOR[package]}.x: check it against the new version, then move the pin"
    )
    requirements = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pinned = [Requirement(r) for r in requirements if Requirement(r).name == package]
    assert pinned, f"{package} is not pinned in {PYPROJECT}"
    assert installed in pinned[0].specifier
    # The pin admits no other minor version.
    major, minor = (int(part) for part in WRITTEN_FOR[package].split("."))
    assert f"{major}.{minor + 1}.0" not in pinned[0].specifier


def test_client_event_dispatch_is_where_the_adapter_overrides_it() -> None:
    assert parameters(socketio.AsyncServer._handle_event) == [
        "self",
        "eio_sid",
        "namespace",
        "id",
        "data",
    ]
    assert parameters(socketio.AsyncServer._send_packet) == ["self", "eio_sid", "pkt"]
    assert parameters(socketio.AsyncManager.get_participants) == ["self", "namespace", "room"]


def test_the_websocket_transport_is_chosen_from_the_servers_async_table() -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp")
    assert sio.eio._async["websocket"] is engineio_aiohttp.WebSocket
    install_websocket_transport(sio, WebSocketTransports())
    installed = sio.eio._async["websocket"]
    assert issubclass(installed, engineio_aiohttp.WebSocket)
    assert installed is not engineio_aiohttp.WebSocket
    # engineio builds it as ``WebSocket(socket._websocket_handler, server)`` and awaits
    # ``ws(environ)``; the subclass reads the sid from the handler's socket.
    assert parameters(engineio_aiohttp.WebSocket.__init__)[:3] == ["self", "handler", "server"]
    assert "self.server._async['websocket'](" in inspect.getsource(
        async_socket.AsyncSocket._upgrade_websocket
    )
    assert parameters(async_socket.AsyncSocket._websocket_handler) == ["self", "ws"]


async def test_a_sessions_route_follows_its_engineio_state() -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp")
    transports = WebSocketTransports()
    sessions = EngineSessions(sio, transports)
    socket = async_socket.AsyncSocket(sio.eio, "eio-1")
    assert isinstance(socket.queue, asyncio.Queue)
    assert (socket.upgraded, socket.upgrading, socket.closed, socket.closing) == (
        False,
        False,
        False,
        False,
    )
    assert sessions.route("eio-1") is None  # not a session of this server yet
    sio.eio.sockets["eio-1"] = socket
    assert sessions.route("eio-1") is socket.queue  # long-polling

    transport = object()  # the TCP transport an open WebSocket would register
    transports.opened("eio-1", transport)  # type: ignore[arg-type]
    socket.upgrading = True
    assert sessions.route("eio-1") is socket.queue  # mid-upgrade: held by engine.io
    socket.upgrading, socket.upgraded = False, True
    assert sessions.route("eio-1") is transport  # on its WebSocket
    socket.queue.put_nowait(message_packet(b"earlier"))
    assert sessions.route("eio-1") is socket.queue  # something queued must go first
    socket.queue.get_nowait()
    socket.closing = True
    assert sessions.route("eio-1") is None


def test_a_queued_message_is_what_engineio_writes_for_a_socketio_packet() -> None:
    queued = message_packet('2["note",{"text":"é"}]'.encode())
    assert isinstance(queued, eio_packet.Packet)
    # The frame RoomBroadcast writes straight to a WebSocket is b"4" + text: the same bytes.
    assert queued.encode() == '42["note",{"text":"é"}]'


def test_sessions_close_with_a_reason_engineio_knows() -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp")
    assert sio.eio.reason.SERVER_DISCONNECT
    assert "reason" in parameters(async_socket.AsyncSocket.close)
    assert isinstance(sio.eio.sockets, dict)
