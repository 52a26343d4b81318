"""Client-side helpers of the e2e suite: access tokens and Socket.IO connections.

Until auth's REST API exists, tests mint tokens the way auth will: HS256 with the fleet's
secret, issuer ``chat-auth`` and audience ``chat-api`` (the services' defaults).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import aiohttp
import socketio

from devstack.fleet import FleetPlan
from servicekit.settings import JwtSettings
from servicekit.tokens import IssuedToken, TokenIssuer

ISSUER = "chat-auth"
AUDIENCE = "chat-api"
SOCKET_PATH = "socket.io"
CONNECT_WAIT_SECONDS = 5.0
DISCONNECT_GRACE_SECONDS = 0.3

Transports = Sequence[str] | None


def jwt_settings(
    plan: FleetPlan,
    *,
    secret: str | None = None,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    expiration_seconds: int = 3600,
) -> JwtSettings:
    return JwtSettings(
        secret=plan.jwt_secret if secret is None else secret,
        expiration_seconds=expiration_seconds,
        issuer=issuer,
        audience=audience,
    )


def mint_token(
    plan: FleetPlan,
    *,
    user_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    now: datetime | None = None,
    secret: str | None = None,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    expiration_seconds: int = 3600,
) -> IssuedToken:
    settings = jwt_settings(
        plan,
        secret=secret,
        issuer=issuer,
        audience=audience,
        expiration_seconds=expiration_seconds,
    )
    return TokenIssuer(settings).issue(user_id or uuid.uuid4(), session_id or uuid.uuid4(), now)


def new_client(http_session: Callable[[], aiohttp.ClientSession] | None = None) -> Any:
    """A ``socketio.AsyncClient`` that does not reconnect behind a test's back."""
    if http_session is None:
        return socketio.AsyncClient(reconnection=False)
    # A factory, not a session: the client then owns (and closes) what it creates.
    return socketio.AsyncClient(reconnection=False, http_session=http_session)


async def _finish_unstuck(client: Any, task: asyncio.Task[Any], grace: float) -> Any:
    """Await ``task`` (a connect or disconnect of ``client``) without the long-poll stall.

    A polling client's disconnect sends CLOSE and then waits for its pending long-poll GET.
    python-engineio's server closes the session on that CLOSE but never answers the pending
    GET, so the client waits for its own poll timeout (30 s with the default ping settings).
    After ``grace`` seconds the client's HTTP session is closed, which ends that GET at once;
    the CLOSE went out long before. Over WebSocket the task is done well within ``grace``.
    """
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        http = client.eio.http
        if http is not None and not http.closed:
            await http.close()
    return await task


async def disconnect(client: Any, grace: float = DISCONNECT_GRACE_SECONDS) -> None:
    """Disconnect quickly over either transport (see :func:`_finish_unstuck`)."""
    await _finish_unstuck(client, asyncio.ensure_future(client.disconnect()), grace)


@contextlib.asynccontextmanager
async def connected_socket(
    url: str,
    *,
    auth: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    transports: Transports = None,
    http_session: Callable[[], aiohttp.ClientSession] | None = None,
) -> AsyncIterator[Any]:
    """A connected Socket.IO client, disconnected on exit."""
    client = new_client(http_session)
    await client.connect(
        url,
        auth=auth,
        headers=headers or {},
        transports=list(transports) if transports is not None else None,
        socketio_path=SOCKET_PATH,
        wait_timeout=CONNECT_WAIT_SECONDS,
    )
    try:
        yield client
    finally:
        await disconnect(client)


class ConnectRefused(AssertionError):
    """The connection was expected to be refused, and it was not."""


async def refused_connect(
    url: str,
    *,
    auth: object = None,
    transports: Transports = None,
) -> tuple[BaseException, list[Any]]:
    """Connect expecting refusal: the ``ConnectionError`` raised and the ``connect_error`` data.

    Raises :class:`ConnectRefused` if the connection succeeds.
    """
    client = new_client()
    errors: list[Any] = []
    refused = asyncio.Event()

    async def on_connect_error(data: Any = None) -> None:
        errors.append(data)
        refused.set()

    client.on("connect_error", on_connect_error)
    connecting = asyncio.ensure_future(
        client.connect(
            url,
            auth=auth,
            transports=list(transports) if transports is not None else None,
            socketio_path=SOCKET_PATH,
            wait_timeout=CONNECT_WAIT_SECONDS,
        )
    )
    # After a connect_error the client disconnects inside connect(): unstick that too.
    waiting = asyncio.ensure_future(refused.wait())
    await asyncio.wait({connecting, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    try:
        await _finish_unstuck(client, connecting, DISCONNECT_GRACE_SECONDS)
    except socketio.exceptions.ConnectionError as error:
        return error, errors
    await disconnect(client)
    raise ConnectRefused(f"connected with auth={auth!r} over {transports or 'default'}")


def refusal_message(data: list[Any]) -> str | None:
    """The server's message from the ``connect_error`` payloads (``{"message": ...}``)."""
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            return str(item["message"])
    return None
