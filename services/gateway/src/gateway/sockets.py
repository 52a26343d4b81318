"""The Socket.IO entry point: the handshake and every client event, decoded, rate-limited and
handed to its use case; the use case's answer (or refusal) becomes the ack.

Each client event is decoded strictly with the contract types and answered ``{ok: true, ...}``
(the contract's success ack) or ``{ok: false, error: {code, message}}``. python-socketio runs
each event as its own task, so a client's events may complete out of order: order comes from
``seq``, never from arrival.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from redis.exceptions import RedisError

from contracts.errors import ContractError
from contracts.sockets import (
    ConversationJoinPayload,
    ConversationLeavePayload,
    Done,
    MessageSendPayload,
    PresenceGetPayload,
    SyncPayload,
    TypingPayload,
    ack_error,
    ack_ok,
    decode_socket_payload,
)
from contracts.wire import WireStruct
from gateway.catch_up import CatchUp, sync_cost
from gateway.connections import UNAVAILABLE, Connections
from gateway.conversation_activity import ConversationActivities
from gateway.domain import ConnectionRefused, Refused, SocketUser, too_fast
from gateway.message_sending import MessageSending
from gateway.presence_lookup import PresenceLookup
from gateway.socketio_internals import (
    ClientEventServer,
    WebSocketTransports,
    install_websocket_transport,
)
from servicekit.logs import get_logger
from servicekit.peer_api import PeerUnavailableError
from servicekit.token_buckets import Bucket, TokenBuckets
from servicekit.tokens import bearer_token

_log = get_logger("gateway.sockets")

DONE = Done()
Limits = tuple[Bucket, Bucket]
UseCase = Callable[[str, SocketUser, Any], Awaitable[WireStruct | None]]


def create_socket_server(
    cors_origins: tuple[str, ...] | str,
    max_payload_bytes: int,
    transports: WebSocketTransports,
) -> socketio.AsyncServer:
    sio = ClientEventServer(
        async_mode="aiohttp",
        cors_allowed_origins=cors_origins,
        max_http_buffer_size=max_payload_bytes,
        http_compression=False,
        logger=False,
        engineio_logger=False,
    )
    # A room emit would otherwise be deflated once per recipient socket.
    install_websocket_transport(sio, transports)
    return sio


class SocketHandlers:
    def __init__(
        self,
        *,
        sio: socketio.AsyncServer,
        limiter: TokenBuckets,
        event_limits: Limits,
        connections: Connections,
        sending: MessageSending,
        activities: ConversationActivities,
        catch_up: CatchUp,
        presence_lookup: PresenceLookup,
    ) -> None:
        self._sio = sio
        self._limiter = limiter
        self._event_limits = event_limits
        self._connections = connections
        self._sending = sending
        self._activities = activities
        self._catch_up = catch_up
        self._presence_lookup = presence_lookup

    def register(self) -> None:
        sio, limits, act = self._sio, self._event_limits, self._activities
        sio.on("connect", self.connect)
        # message:send takes its tokens in its own checks, in the same round trip.
        sio.on("message:send", self._event("message:send", MessageSendPayload, self._send, None))
        sio.on(
            "typing:start",
            self._event("typing:start", TypingPayload, _done(act.start_typing), limits),
        )
        sio.on(
            "typing:stop", self._event("typing:stop", TypingPayload, _done(act.stop_typing), limits)
        )
        sio.on(
            "conversation:join",
            self._event("conversation:join", ConversationJoinPayload, _done(act.open), limits),
        )
        sio.on(
            "conversation:leave",
            self._event("conversation:leave", ConversationLeavePayload, _done(act.close), limits),
        )
        sio.on("sync", self._event("sync", SyncPayload, self._sync, limits, cost=sync_cost))
        sio.on("presence:get", self._event("presence:get", PresenceGetPayload, self._find, limits))
        sio.on("disconnect", self.disconnect)
        sio.on("*", self.unknown_event)

    async def connect(self, sid: str, environ: dict[str, Any], auth: object) -> None:
        if auth is not None and not isinstance(auth, dict):
            raise socketio.exceptions.ConnectionRefusedError("auth must be an object: {token}")
        token = (auth or {}).get("token") or bearer_token(environ.get("HTTP_AUTHORIZATION"))
        if not isinstance(token, str) or not token:
            raise socketio.exceptions.ConnectionRefusedError("authentication required")
        try:
            user = await self._connections.connect(sid, token)
        except ConnectionRefused as refused:
            raise socketio.exceptions.ConnectionRefusedError(str(refused)) from None
        except RedisError as error:
            _log.error("connect_redis_unavailable", error=str(error))
            raise socketio.exceptions.ConnectionRefusedError(UNAVAILABLE) from None
        await self._sio.save_session(sid, user)

    async def disconnect(self, sid: str, reason: object = None) -> None:
        await self._connections.disconnect(
            sid, lambda user: self._activities.socket_gone(sid, user)
        )

    async def unknown_event(self, event: str, sid: str, *data: Any) -> dict[str, Any]:
        """Every event with an ack is answered, an unknown one too."""
        return ack_error("invalid", f"unknown event {event[:64]!r}")

    async def keep_presence(self) -> None:
        await self._connections.keep_presence()

    async def _send(self, sid: str, user: SocketUser, payload: MessageSendPayload) -> WireStruct:
        return await self._sending.send(sid, user, payload)

    async def _sync(self, sid: str, user: SocketUser, payload: SyncPayload) -> WireStruct:
        return await self._catch_up.sync(user, payload)

    async def _find(self, sid: str, user: SocketUser, payload: PresenceGetPayload) -> WireStruct:
        return await self._presence_lookup.find(user, payload)

    def _event(
        self,
        name: str,
        payload_type: type[WireStruct],
        use_case: UseCase,
        limits: Limits | None,
        cost: Callable[[Any], int] = lambda _: 1,
    ) -> Callable[[str, Any], Awaitable[dict[str, Any]]]:
        """Decode, rate-limit (``limits`` None: the use case does; an event takes ``cost`` of
        its payload tokens), run the use case and answer: every event gets an ack."""

        async def event(sid: str, data: Any = None) -> dict[str, Any]:
            try:
                payload = decode_socket_payload(payload_type, data)
            except ContractError as error:
                return ack_error("invalid", str(error))
            user: SocketUser = await self._sio.get_session(sid)
            try:
                if limits is not None:
                    per_socket, per_user = limits
                    decision = await self._limiter.take(
                        [(per_socket, sid), (per_user, str(user.user_id))], cost(payload)
                    )
                    if not decision.allowed:
                        return ack_error("rate_limited", too_fast(decision.retry_after_seconds))
                answer = await use_case(sid, user, payload)
            except Refused as refusal:
                return ack_error(refusal.code, refusal.message)
            except PeerUnavailableError as error:
                _log.error("chat_unavailable", handler=name, error=str(error))
                return ack_error("internal", "temporarily unavailable; retry")
            except RedisError as error:
                # Redis restarting: the client resends (docs/realtime.md), not waits forever.
                _log.error("redis_unavailable", handler=name, error=str(error))
                return ack_error("internal", "temporarily unavailable; retry")
            return ack_ok(answer if answer is not None else DONE)

        return event


def _done(
    act: Callable[[str, SocketUser, Any], Awaitable[None]],
) -> UseCase:
    """A use case that answers nothing but success, on a payload naming one conversation."""

    async def call(sid: str, user: SocketUser, payload: Any) -> None:
        await act(sid, user, payload.conversation_id)

    return call
