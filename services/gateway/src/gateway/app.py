"""The gateway's composition root: aiohttp + python-socketio on the service kit."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.config import SERVICE, GatewaySettings
from gateway.sockets import create_socket_server, register_handshake
from servicekit.http_app import create_service_app
from servicekit.redis_store import KeySpace
from servicekit.resources import REDIS, service_resources
from servicekit.tokens import TOKEN_VERIFIER, RevocationList, TokenVerifier


def create_app(settings: GatewaySettings) -> web.Application:
    platform = settings.platform
    app = create_service_app(SERVICE, platform.http)
    sio = create_socket_server(settings)
    sio.attach(app, socketio_path="socket.io")

    async def token_verifier(app: web.Application) -> AsyncIterator[None]:
        revocations = RevocationList(app[REDIS], KeySpace(platform.redis.key_prefix))
        verifier = TokenVerifier(platform.jwt, revocations)
        app[TOKEN_VERIFIER] = verifier
        register_handshake(sio, verifier)
        yield

    app.cleanup_ctx.extend([*service_resources(platform), token_verifier])
    return app
