"""The Socket.IO contract: handshake, and every client event with its ack.

Each client event is decoded strictly with the contract types and answered ``{ok: true, ...}``
or ``{ok: false, error: {code, message}}``. python-socketio runs each event as its own task,
so a client's events may complete out of order: order comes from ``seq``, never from arrival.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import socketio
from redis.exceptions import RedisError

from contracts import make_envelope
from contracts.chat_api import ChangePage, MessagePage
from contracts.errors import ContractError
from contracts.events import (
    ActivityKind,
    ConversationActivity,
    MessageSend,
    PresenceOffline,
    PresenceOnline,
)
from contracts.sockets import (
    ConversationJoinPayload,
    ConversationLeavePayload,
    Done,
    MessageSendPayload,
    MessageSent,
    PresenceFound,
    PresenceGetPayload,
    PresenceState,
    SyncChange,
    SyncConversation,
    Synced,
    SyncPayload,
    TypingPayload,
    ack_error,
    ack_ok,
    decode_socket_payload,
)
from contracts.wire import WireStruct
from gateway.audience import PresenceAudience
from gateway.chat_client import ChatClient, ChatUnavailableError
from gateway.config import SERVICE
from gateway.lost_state import LostStateRestore
from gateway.memberships import MembershipDirectory
from gateway.pending_sends import PendingSends, SendRefusedError
from gateway.presence import HEARTBEAT_SECONDS, Presence, TooManySockets
from gateway.rooms import conversation_room, session_room, user_room
from gateway.send_checks import AlreadySent, Cleared, NotAMember, RateLimited, SendChecks
from gateway.socketio_internals import (
    ClientEventServer,
    WebSocketTransports,
    install_websocket_transport,
)
from servicekit.amqp.publisher import ConfirmedPublisher, PublishFailedError
from servicekit.logs import get_logger
from servicekit.token_buckets import Bucket, TokenBuckets
from servicekit.tokens import (
    InvalidTokenError,
    RevocationsUnknownError,
    TokenVerifier,
    bearer_token,
)

_log = get_logger("gateway.sockets")

SYNC_PAGE = 100
TYPING_SECONDS = 5.0
LATE_ANSWER_SECONDS = 300.0
DONE = Done()
Limits = tuple[Bucket, Bucket]


@dataclass(frozen=True, slots=True)
class SocketUser:
    user_id: uuid.UUID
    session_id: uuid.UUID
    token: str


def sync_cost(payload: SyncPayload) -> int:
    """A ``sync`` asks chat once per conversation and position kind: one token, and one more
    per ten asks."""
    return 1 + (len(payload.since) + len(payload.changes_since)) // 10


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
        verifier: TokenVerifier,
        chat: ChatClient,
        memberships: MembershipDirectory,
        publisher: ConfirmedPublisher,
        pending: PendingSends,
        limiter: TokenBuckets,
        send_checks: SendChecks,
        ack_timeout: float,
        presence: Presence,
        audience: PresenceAudience,
        event_limits: Limits,
        lost_state: LostStateRestore | None = None,
    ) -> None:
        self._sio = sio
        self._verifier = verifier
        self._chat = chat
        self._memberships = memberships
        self._publisher = publisher
        self._pending = pending
        self._limiter = limiter
        self._send_checks = send_checks
        self._ack_timeout = ack_timeout
        self._presence = presence
        self._audience = audience
        self._event_limits = event_limits
        self._lost_state = lost_state
        self._local: dict[str, SocketUser] = {}
        self._typing: dict[tuple[str, uuid.UUID], asyncio.Task[None]] = {}

    def register(self) -> None:
        sio = self._sio
        sio.on("connect", self.connect)
        # message:send takes its tokens in its own checks, in the same round trip.
        sio.on("message:send", self._guarded(self.message_send, MessageSendPayload, None))
        sio.on("typing:start", self._guarded(self.typing_start, TypingPayload, self._event_limits))
        sio.on("typing:stop", self._guarded(self.typing_stop, TypingPayload, self._event_limits))
        sio.on(
            "conversation:join",
            self._guarded(self.conversation_join, ConversationJoinPayload, self._event_limits),
        )
        sio.on(
            "conversation:leave",
            self._guarded(self.conversation_leave, ConversationLeavePayload, self._event_limits),
        )
        sio.on(
            "sync",
            self._guarded(self.sync, SyncPayload, self._event_limits, cost=sync_cost),
        )
        sio.on(
            "presence:get", self._guarded(self.presence_get, PresenceGetPayload, self._event_limits)
        )
        sio.on("disconnect", self.disconnect)
        sio.on("*", self.unknown_event)

    async def connect(self, sid: str, environ: dict[str, Any], auth: object) -> None:
        try:
            await self._connect(sid, environ, auth)
        except RedisError as error:
            _log.error("connect_redis_unavailable", error=str(error))
            raise socketio.exceptions.ConnectionRefusedError("temporarily unavailable") from None

    async def _connect(self, sid: str, environ: dict[str, Any], auth: object) -> None:
        if auth is not None and not isinstance(auth, dict):
            raise socketio.exceptions.ConnectionRefusedError("auth must be an object: {token}")
        token = (auth or {}).get("token") or bearer_token(environ.get("HTTP_AUTHORIZATION"))
        if not isinstance(token, str) or not token:
            raise socketio.exceptions.ConnectionRefusedError("authentication required")
        try:
            claims = await self._verifier.verify(token)
        except RevocationsUnknownError:
            raise socketio.exceptions.ConnectionRefusedError("temporarily unavailable") from None
        except InvalidTokenError as error:
            raise socketio.exceptions.ConnectionRefusedError(f"invalid token: {error}") from None
        try:
            listed = await self._chat.conversation_ids(token)
        except ChatUnavailableError as error:
            _log.error("connect_lookup_failed", error=str(error))
            raise socketio.exceptions.ConnectionRefusedError("temporarily unavailable") from None
        user = SocketUser(claims.user_id, claims.session_id, token)
        try:
            became_online = await self._presence.connected(user.user_id, sid)
        except TooManySockets as refused:
            raise socketio.exceptions.ConnectionRefusedError(
                f"too many connections: at most {refused.args[0]} per user"
            ) from None
        await self._sio.save_session(sid, user)
        await self._sio.enter_room(sid, user_room(user.user_id))
        await self._sio.enter_room(sid, session_room(user.session_id))
        for conversation_id in listed.conversation_ids:
            await self._sio.enter_room(sid, conversation_room(conversation_id))
        # Presence goes only through conversations the user took part in.
        await self._audience.remember(user.user_id, listed.engaged_ids)
        await self._audience.remember_blocks(user.user_id, listed.blocked_ids)
        self._local[sid] = user
        if became_online:
            await self._announce(PresenceOnline, user.user_id)

    async def unknown_event(self, event: str, sid: str, *data: Any) -> dict[str, Any]:
        """Every event with an ack is answered, an unknown one too."""
        return ack_error("invalid", f"unknown event {event[:64]!r}")

    async def disconnect(self, sid: str, reason: object = None) -> None:
        held = self._local.pop(sid, None)
        user_id = held.user_id if held is not None else None
        for key in [key for key in self._typing if key[0] == sid]:
            self._typing.pop(key).cancel()
            if user_id is not None:
                await self._publish_activity(sid, user_id, key[1], "stopped-typing")
        if user_id is not None and await self._presence.disconnected(user_id, sid):
            await self._announce(PresenceOffline, user_id)

    async def keep_presence(self) -> None:
        """Renew this instance's sockets and sweep users whose instance died, until cancelled;
        write again what Redis lost of this instance's sockets."""
        if self._lost_state is not None:
            try:
                await self._lost_state.lost()  # the marker, from the start
            except RedisError as error:
                _log.warning("lost_state_marker_not_written", error=str(error))
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                if self._lost_state is not None and await self._lost_state.lost():
                    await self._lost_state.restore(list(self._local.items()))
                await self._presence.renew(list(self._local_sockets()))
                for user_id in await self._presence.sweep():
                    await self._announce(PresenceOffline, user_id)
            except Exception:
                _log.exception("presence_heartbeat_failed")

    def _local_sockets(self) -> list[tuple[uuid.UUID, str]]:
        return [(user.user_id, sid) for sid, user in self._local.items()]

    async def _announce(
        self, kind: type[PresenceOnline] | type[PresenceOffline], user_id: uuid.UUID
    ) -> None:
        conversation_ids = await self._audience.conversations(user_id)
        hidden = await self._audience.hidden_from(user_id)
        now = datetime.now(UTC)
        event: PresenceOnline | PresenceOffline = (
            PresenceOnline(
                user_id=user_id, at=now, conversation_ids=conversation_ids, hidden_from=hidden
            )
            if kind is PresenceOnline
            else PresenceOffline(
                user_id=user_id,
                last_seen_at=now,
                conversation_ids=conversation_ids,
                hidden_from=hidden,
            )
        )
        try:
            await self._publisher.publish_envelopes([make_envelope(event, producer=SERVICE)])
        except PublishFailedError as error:
            _log.warning("presence_not_published", error=str(error))

    def _guarded(
        self,
        handler: Any,
        payload_type: type[WireStruct],
        limits: Limits | None,
        cost: Callable[[Any], int] = lambda _: 1,
    ) -> Any:
        """Decode, rate-limit (``limits`` None: the handler does; an event takes ``cost`` of
        its payload tokens) and turn refusals into error acks: every event answers."""

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
                        return ack_error("rate_limited", _too_fast(decision.retry_after_seconds))
                result: dict[str, Any] = await handler(sid, user, payload)
            except Refused as refusal:
                return ack_error(refusal.code, refusal.message)  # type: ignore[arg-type]
            except ChatUnavailableError as error:
                _log.error("chat_unavailable", error=str(error))
                return ack_error("internal", "temporarily unavailable; retry")
            except RedisError as error:
                # Redis restarting: the client resends (docs/realtime.md), not waits forever.
                _log.error("redis_unavailable", handler=handler.__name__, error=str(error))
                return ack_error("internal", "temporarily unavailable; retry")
            return result

        event.__name__ = handler.__name__
        return event

    async def _member(self, user: SocketUser, conversation_id: uuid.UUID) -> None:
        if not await self._memberships.is_member(conversation_id, user.user_id, user.token):
            raise Refused("not_found", "no such conversation")

    async def message_send(
        self, sid: str, user: SocketUser, payload: MessageSendPayload
    ) -> dict[str, Any]:
        match await self._send_checks.check(
            sid=sid,
            user_id=user.user_id,
            token=user.token,
            conversation_id=payload.conversation_id,
            client_message_id=payload.client_message_id,
        ):
            case RateLimited(retry_after_seconds=seconds):
                raise Refused("rate_limited", _too_fast(seconds))
            case NotAMember():
                raise Refused("not_found", "no such conversation")
            case AlreadySent(message=known):
                if known.conversation_id != payload.conversation_id:
                    # As REST answers it (409): the id names a message of another conversation.
                    raise Refused(
                        "conflict", "clientMessageId already used in another conversation"
                    )
                return ack_ok(MessageSent(message=known))
            case Cleared():
                pass
        stored = self._pending.expect(user.user_id, payload.client_message_id)
        command = MessageSend(
            conversation_id=payload.conversation_id,
            sender_id=user.user_id,
            content=payload.content,
            client_message_id=payload.client_message_id,
            attachments=payload.attachments,
            sent_at=datetime.now(UTC),
            socket_id=sid,
        )
        try:
            await self._publisher.publish_envelopes([make_envelope(command, producer=SERVICE)])
        except PublishFailedError as error:
            self._pending.forget(user.user_id, payload.client_message_id)
            _log.error("message_send_not_published", error=str(error))
            raise Refused("internal", "the message was not accepted; retry") from None
        try:
            async with asyncio.timeout(self._ack_timeout):
                message = await asyncio.shield(stored)
        except SendRefusedError as refusal:
            raise Refused(refusal.code, refusal.detail) from None
        except TimeoutError:
            self._pending.forget_later(
                user.user_id, payload.client_message_id, stored, LATE_ANSWER_SECONDS
            )
            raise Refused(
                "timeout", "not confirmed in time; resend with the same clientMessageId"
            ) from None
        self._send_checks.remember_sent(user.user_id, payload.client_message_id, message)
        return ack_ok(MessageSent(message=message))

    async def typing_start(
        self, sid: str, user: SocketUser, payload: TypingPayload
    ) -> dict[str, Any]:
        result = await self._room_event(sid, user, payload.conversation_id, "typing")
        key = (sid, payload.conversation_id)
        if (expiring := self._typing.pop(key, None)) is not None:
            expiring.cancel()
        self._typing[key] = asyncio.create_task(
            self._typing_expires(sid, user.user_id, payload.conversation_id)
        )
        return result

    async def typing_stop(
        self, sid: str, user: SocketUser, payload: TypingPayload
    ) -> dict[str, Any]:
        if (expiring := self._typing.pop((sid, payload.conversation_id), None)) is not None:
            expiring.cancel()
        return await self._room_event(sid, user, payload.conversation_id, "stopped-typing")

    async def _typing_expires(
        self, sid: str, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> None:
        """A client that stops typing without saying so (or drops) stops by itself."""
        await asyncio.sleep(TYPING_SECONDS)
        self._typing.pop((sid, conversation_id), None)
        await self._publish_activity(sid, user_id, conversation_id, "stopped-typing")

    async def conversation_join(
        self, sid: str, user: SocketUser, payload: ConversationJoinPayload
    ) -> dict[str, Any]:
        await self._member(user, payload.conversation_id)
        await self._sio.enter_room(sid, conversation_room(payload.conversation_id))
        await self._presence.viewing(user.user_id, sid, payload.conversation_id)
        return await self._room_event(sid, user, payload.conversation_id, "joined")

    async def conversation_leave(
        self, sid: str, user: SocketUser, payload: ConversationLeavePayload
    ) -> dict[str, Any]:
        # The socket stays in the conversation's room: closing a conversation's screen must not
        # stop its messages reaching the conversation list (the room is left on removal only).
        result = await self._room_event(sid, user, payload.conversation_id, "left")
        await self._presence.stopped_viewing(user.user_id, sid, payload.conversation_id)
        return result

    async def _room_event(
        self, sid: str, user: SocketUser, conversation_id: uuid.UUID, kind: ActivityKind
    ) -> dict[str, Any]:
        """Relayed through the bus: the room's other sockets may be on any instance."""
        await self._member(user, conversation_id)
        if not await self._publish_activity(sid, user.user_id, conversation_id, kind):
            raise Refused("internal", "not delivered; retry")
        return ack_ok(DONE)

    async def _publish_activity(
        self, sid: str, user_id: uuid.UUID, conversation_id: uuid.UUID, kind: ActivityKind
    ) -> bool:
        activity = ConversationActivity(
            conversation_id=conversation_id,
            user_id=user_id,
            kind=kind,
            origin_socket=sid,
            at=datetime.now(UTC),
        )
        try:
            await self._publisher.publish_envelopes([make_envelope(activity, producer=SERVICE)])
        except PublishFailedError as error:
            # Typing and presence may be dropped under pressure; messages never are.
            _log.warning("activity_not_published", error=str(error))
            return False
        return True

    async def presence_get(
        self, sid: str, user: SocketUser, payload: PresenceGetPayload
    ) -> dict[str, Any]:
        visible = await self._audience.visible_to(user.user_id, payload.user_ids)
        hidden = [i for i in dict.fromkeys(payload.user_ids) if i not in visible]
        states = await self._presence.online([i for i in payload.user_ids if i in visible])
        return ack_ok(
            PresenceFound(
                not_found=hidden,
                presence={
                    user_id: PresenceState(
                        online=seen is None,
                        last_seen_at=None if not seen else datetime.fromtimestamp(seen, UTC),
                    )
                    for user_id, seen in states.items()
                },
            )
        )

    async def sync(self, sid: str, user: SocketUser, payload: SyncPayload) -> dict[str, Any]:
        """Every message after the client's last seq and every change after its last
        changeSeq, per conversation, a page of each."""
        messages: dict[uuid.UUID, MessagePage] = {}
        changes: dict[uuid.UUID, ChangePage] = {}
        missing: set[uuid.UUID] = set()
        for conversation_id, last_seq in payload.since.items():
            page = await self._chat.messages_after(user.token, conversation_id, last_seq, SYNC_PAGE)
            if page is None:
                missing.add(conversation_id)
            else:
                messages[conversation_id] = page
        for conversation_id, last_change in payload.changes_since.items():
            if conversation_id in missing:
                continue
            changed = await self._chat.changes_after(
                user.token, conversation_id, last_change, SYNC_PAGE
            )
            if changed is None:
                missing.add(conversation_id)
                messages.pop(conversation_id, None)
            else:
                changes[conversation_id] = changed
        return ack_ok(
            Synced(
                conversations={
                    conversation_id: _missed(
                        messages.get(conversation_id), changes.get(conversation_id)
                    )
                    for conversation_id in {**messages, **changes}
                },
                not_found=sorted(missing),
            )
        )


def _missed(messages: MessagePage | None, changes: ChangePage | None) -> SyncConversation:
    """One conversation's part of the ``sync`` ack: what was asked of it, nothing else."""
    return SyncConversation(
        messages=messages.messages if messages is not None else msgspec.UNSET,
        has_more=messages.has_more if messages is not None else msgspec.UNSET,
        changes=[
            SyncChange(
                change_seq=c.change_seq, event=c.event, data=msgspec.json.decode(c.data), at=c.at
            )
            for c in changes.changes
        ]
        if changes is not None
        else msgspec.UNSET,
        last_change_seq=changes.last_change_seq if changes is not None else msgspec.UNSET,
        has_more_changes=changes.has_more if changes is not None else msgspec.UNSET,
    )


def _too_fast(retry_after_seconds: int) -> str:
    return f"too fast; retry in {retry_after_seconds}s"
