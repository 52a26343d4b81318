"""Connecting and disconnecting sockets: who the socket is, which rooms it joins, and the
presence its user shows to the people they engaged with."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from redis.exceptions import RedisError

from contracts.events import PresenceOffline, PresenceOnline
from gateway.domain import ConnectionRefused, SocketUser
from gateway.lost_state import LostStateRestore
from gateway.ports import Audience, ChatReads, EventBus, PresenceStore, SocketRooms, Tokens
from gateway.presence import HEARTBEAT_SECONDS, TooManySockets
from gateway.rooms import conversation_room, session_room, user_room
from servicekit.amqp.publisher import PublishFailedError
from servicekit.logs import get_logger
from servicekit.peer_api import PeerUnavailableError
from servicekit.tokens import InvalidTokenError, RevocationsUnknownError

_log = get_logger("gateway.connections")

UNAVAILABLE = "temporarily unavailable"


class Connections:
    def __init__(
        self,
        *,
        tokens: Tokens,
        chat: ChatReads,
        rooms: SocketRooms,
        presence: PresenceStore,
        audience: Audience,
        bus: EventBus,
        lost_state: LostStateRestore | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tokens = tokens
        self._chat = chat
        self._rooms = rooms
        self._presence = presence
        self._audience = audience
        self._bus = bus
        self._lost_state = lost_state
        self._now = now
        self._local: dict[str, SocketUser] = {}

    def user_of(self, sid: str) -> SocketUser | None:
        return self._local.get(sid)

    async def connect(self, sid: str, token: str) -> SocketUser:
        """The socket's user, once it is in its rooms and its presence is shown; refused with
        the reason a client may read (``ConnectionRefused``)."""
        try:
            claims = await self._tokens.verify(token)
        except RevocationsUnknownError:
            raise ConnectionRefused(UNAVAILABLE) from None
        except InvalidTokenError as error:
            raise ConnectionRefused(f"invalid token: {error}") from None
        try:
            listed = await self._chat.conversation_ids(token)
        except PeerUnavailableError as error:
            _log.error("connect_lookup_failed", error=str(error))
            raise ConnectionRefused(UNAVAILABLE) from None
        user = SocketUser(claims.user_id, claims.session_id, token)
        try:
            became_online = await self._presence.connected(user.user_id, sid)
        except TooManySockets as refused:
            raise ConnectionRefused(
                f"too many connections: at most {refused.args[0]} per user"
            ) from None
        await self._rooms.enter(sid, user_room(user.user_id))
        await self._rooms.enter(sid, session_room(user.session_id))
        for conversation_id in listed.conversation_ids:
            await self._rooms.enter(sid, conversation_room(conversation_id))
        # Presence goes only through conversations the user took part in.
        await self._audience.remember(user.user_id, listed.engaged_ids)
        await self._audience.remember_blocks(user.user_id, listed.blocked_ids)
        self._local[sid] = user
        if became_online:
            await self._announce(PresenceOnline, user.user_id)
        return user

    async def disconnect(
        self, sid: str, before_offline: Callable[[SocketUser], Awaitable[None]]
    ) -> None:
        """Forget the socket; ``before_offline`` ends what it was doing (typing) first."""
        user = self._local.pop(sid, None)
        if user is None:
            return
        await before_offline(user)
        if await self._presence.disconnected(user.user_id, sid):
            await self._announce(PresenceOffline, user.user_id)

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
                await self._presence.renew(
                    [(user.user_id, sid) for sid, user in self._local.items()]
                )
                for user_id in await self._presence.sweep():
                    await self._announce(PresenceOffline, user_id)
            except Exception:
                _log.exception("presence_heartbeat_failed")

    async def _announce(
        self, kind: type[PresenceOnline] | type[PresenceOffline], user_id: uuid.UUID
    ) -> None:
        conversation_ids = await self._audience.conversations(user_id)
        hidden = await self._audience.hidden_from(user_id)
        now = self._now()
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
            await self._bus.publish(event)
        except PublishFailedError as error:
            _log.warning("presence_not_published", error=str(error))
