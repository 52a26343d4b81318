"""The Socket.IO server: handshake authentication; the event contract grows here."""

from __future__ import annotations

from typing import Any

import socketio

from gateway.config import GatewaySettings
from servicekit.logs import get_logger
from servicekit.tokens import InvalidTokenError, TokenVerifier, bearer_token

_log = get_logger("gateway.sockets")


def create_socket_server(settings: GatewaySettings) -> socketio.AsyncServer:
    return socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=settings.cors_origins,
        max_http_buffer_size=settings.max_payload_bytes,
        logger=False,
        engineio_logger=False,
    )


def register_handshake(sio: socketio.AsyncServer, verifier: TokenVerifier) -> None:
    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None) -> None:
        token = (auth or {}).get("token") or bearer_token(environ.get("HTTP_AUTHORIZATION"))
        if not isinstance(token, str) or not token:
            raise socketio.exceptions.ConnectionRefusedError("authentication required")
        try:
            claims = await verifier.verify(token)
        except InvalidTokenError as error:
            raise socketio.exceptions.ConnectionRefusedError(f"invalid token: {error}") from None
        await sio.save_session(sid, {"user_id": str(claims.user_id), "sid": str(claims.session_id)})
        await sio.enter_room(sid, f"user:{claims.user_id}")
        _log.info("socket_connected", user_id=str(claims.user_id))

    sio.on("connect", connect)
