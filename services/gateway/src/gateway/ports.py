"""What the gateway's use cases need from the world, as protocols: the adapters (Redis, chat's
REST API, the broker, python-socketio) satisfy them in production, and fakes in unit tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol
from uuid import UUID

from contracts.chat_api import ChangePage, ConversationIds, MessagePage
from contracts.events import (
    ConversationActivity,
    MessageSend,
    MessageView,
    PresenceOffline,
    PresenceOnline,
)
from gateway.domain import SendCheck
from servicekit.tokens import AccessClaims

BusEvent = MessageSend | ConversationActivity | PresenceOnline | PresenceOffline


class Tokens(Protocol):
    async def verify(self, token: str) -> AccessClaims: ...


class ChatReads(Protocol):
    """Chat's REST API, asked as the user (``token``): ``None`` where chat answers 404."""

    async def conversation_ids(self, token: str) -> ConversationIds: ...

    async def messages_after(
        self, token: str, conversation_id: UUID, after: int, limit: int
    ) -> MessagePage | None: ...

    async def changes_after(
        self, token: str, conversation_id: UUID, after: int, limit: int
    ) -> ChangePage | None: ...


class Memberships(Protocol):
    async def is_member(self, conversation_id: UUID, user_id: UUID, token: str) -> bool: ...


class EventBus(Protocol):
    async def publish(self, event: BusEvent) -> None:
        """Published and confirmed by the broker; raises ``PublishFailedError`` otherwise."""
        ...


class SocketRooms(Protocol):
    async def enter(self, sid: str, room: str) -> None: ...


class PresenceStore(Protocol):
    async def connected(self, user_id: UUID, sid: str) -> bool: ...

    async def disconnected(self, user_id: UUID, sid: str) -> bool: ...

    async def viewing(self, user_id: UUID, sid: str, conversation_id: UUID) -> None: ...

    async def stopped_viewing(self, user_id: UUID, sid: str, conversation_id: UUID) -> None: ...

    async def renew(self, sockets: list[tuple[UUID, str]]) -> None: ...

    async def sweep(self) -> list[UUID]: ...

    async def online(self, user_ids: list[UUID]) -> dict[UUID, float | None]: ...


class Audience(Protocol):
    async def remember(self, user_id: UUID, conversation_ids: Iterable[UUID]) -> None: ...

    async def remember_blocks(self, blocker_id: UUID, blocked_ids: Iterable[UUID]) -> None: ...

    async def conversations(self, user_id: UUID) -> list[UUID]: ...

    async def hidden_from(self, user_id: UUID) -> list[UUID]: ...

    async def visible_to(self, viewer_id: UUID, user_ids: list[UUID]) -> set[UUID]: ...


class SendCheckStore(Protocol):
    async def check(
        self,
        *,
        sid: str,
        user_id: UUID,
        token: str,
        conversation_id: UUID,
        client_message_id: str,
    ) -> SendCheck: ...

    def remember_sent(
        self, user_id: UUID, client_message_id: str, message: MessageView
    ) -> None: ...
