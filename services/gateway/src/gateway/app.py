"""The gateway's composition root: aiohttp + python-socketio on the service kit."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.config import SERVICE, GatewaySettings
from gateway.long_polls import LongPolls
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

    long_polls = LongPolls()
    app.middlewares.append(long_polls.track)

    async def disconnect_sockets(_: web.Application) -> None:
        # Ends every session and every held long-poll, so the drain does not wait on them;
        # clients reconnect to another instance.
        await sio.eio.disconnect()
        long_polls.cancel_all()
        await sio.shutdown()

    app.on_shutdown.append(disconnect_sockets)
    app.cleanup_ctx.extend([*service_resources(platform), token_verifier])
    return app
