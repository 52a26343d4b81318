"""The gateway under test, in-process: the app with the session's broker and a stand-in for
chat's REST API (``Gateway``, ``ChatStandin``), identities with minted tokens, ``FakeChat`` for
the membership directory alone, and the test's own Redis key space (``Store``). The fixtures
that make them are in ``conftest.py``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import socketio
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from aiohttp import web

from contracts import make_envelope
from contracts.chat_api import ConversationResponse, ConversationView, MessagePage, Participant
from contracts.envelope import decode_envelope
from contracts.events import MessageAlreadyStored, MessageCreated, MessageSend, MessageView
from devstack.broker_probe import collect, declare_probe_queue
from devstack.stored_messages import stored_message
from gateway.config import GatewaySettings
from servicekit.amqp.publisher import ConfirmedPublisher
from servicekit.redis_store import KeySpace, Redis
from servicekit.token_buckets import Bucket
from servicekit.tokens import TokenIssuer


@contextlib.asynccontextmanager
async def connected_socket(url: str, token: str) -> AsyncIterator[Any]:
    """A ``socketio.AsyncClient`` connected over WebSocket to the gateway instance at ``url``,
    disconnected on exit."""
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        url,
        auth={"token": token},
        transports=["websocket"],
        socketio_path="socket.io",
        wait_timeout=5,
    )
    try:
        yield client
    finally:
        await client.disconnect()


@dataclass(frozen=True)
class Store:
    redis: Redis
    keys: KeySpace
    prefix: str


def group_view(conversation_id: uuid.UUID, members: list[uuid.UUID]) -> ConversationView:
    """Chat's view of a group of ``members`` (the first its owner), as chat answers it."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return ConversationView(
        id=conversation_id,
        type="group",
        title="group",
        created_by=members[0],
        created_at=at,
        last_activity_at=at,
        last_seq=0,
        participants=[
            Participant(
                user_id=user,
                role="owner" if i == 0 else "member",
                joined_at=at,
                last_read_seq=0,
                username=None,
                display_name=None,
            )
            for i, user in enumerate(members)
        ],
        last_message=None,
        unread_count=0,
        notification_level="mentions",
    )


@dataclass
class FakeChat:
    """``ChatClient``'s methods, answering from ``members`` as chat does: a conversation is
    found (200) only for a token of one of its participants, else 404 (None)."""

    members: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)
    asked: list[tuple[str, uuid.UUID]] = field(default_factory=list)

    async def conversation(self, token: str, conversation_id: uuid.UUID) -> ConversationView | None:
        self.asked.append((token, conversation_id))
        await asyncio.sleep(0)
        participants = self.members.get(conversation_id)
        if participants is None or uuid.UUID(token.removeprefix("token:")) not in participants:
            return None
        return group_view(conversation_id, participants)

    async def conversation_ids(self, token: str) -> list[uuid.UUID]:
        raise AssertionError("the directory never lists conversations")

    async def messages_after(
        self, token: str, conversation_id: uuid.UUID, after: int, limit: int
    ) -> MessagePage | None:
        raise AssertionError("the directory never reads messages")


@dataclass
class ChatStandin:
    """``GET /api/chat/ids`` (the caller's conversation ids) and ``GET /api/chat/{id}``, by
    token."""

    listed: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    """Conversation ids ``GET /api/chat/ids`` answers for a token (none when absent)."""
    engaged: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    """Those of them the token's user took part in (all of them when absent)."""
    members: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)
    """Participants of the conversations that exist; others are 404."""
    failing: set[str] = field(default_factory=set)
    """Tokens whose conversation list answers 503."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(path, Authorization header) of every request."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/chat/ids", self._list)
        app.router.add_get("/api/chat/{conversation_id}", self._one)
        return app

    def _token(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        self.requests.append((request.path, header))
        return header.removeprefix("Bearer ")

    async def _list(self, request: web.Request) -> web.Response:
        token = self._token(request)
        if token in self.failing:
            return web.json_response({"title": "unavailable"}, status=503)
        ids = [str(i) for i in self.listed.get(token, [])]
        # Taken part in every one of them, unless a test says otherwise.
        engaged = [str(i) for i in self.engaged.get(token, self.listed.get(token, []))]
        return web.json_response({"conversationIds": ids, "engagedIds": engaged, "blockedIds": []})

    async def _one(self, request: web.Request) -> web.Response:
        self._token(request)
        try:
            conversation_id = uuid.UUID(request.match_info["conversation_id"])
        except ValueError:
            return web.json_response({"title": "not found"}, status=404)
        participants = self.members.get(conversation_id)
        if participants is None:
            return web.json_response({"title": "not found"}, status=404)
        answer = ConversationResponse(conversation=group_view(conversation_id, participants))
        return web.Response(body=msgspec.json.encode(answer), content_type="application/json")

    def asked_about(self, conversation_id: uuid.UUID) -> list[str]:
        """The Authorization headers chat was asked about this conversation with."""
        path = f"/api/chat/{conversation_id}"
        return [header for asked, header in self.requests if asked == path]


@dataclass(frozen=True)
class Identity:
    user_id: uuid.UUID
    session_id: uuid.UUID
    token: str


@dataclass
class Gateway:
    url: str
    host: str
    port: int
    env: dict[str, str]
    settings: GatewaySettings
    chat: ChatStandin
    issuer: TokenIssuer
    broker: AbstractRobustConnection
    publisher: ConfirmedPublisher

    @property
    def event_limit(self) -> tuple[Bucket, Bucket]:
        """(per socket, per user) buckets of every event but ``message:send``."""
        return self.settings.event_limits

    @property
    def send_limit(self) -> tuple[Bucket, Bucket]:
        """(per socket, per user) buckets of ``message:send``."""
        return self.settings.send_limits

    def identity(self, user_id: uuid.UUID | None = None) -> Identity:
        user_id = user_id or uuid.uuid4()
        session_id = uuid.uuid4()
        return Identity(user_id, session_id, self.issuer.issue(user_id, session_id).token)

    def socket(self, token: str) -> contextlib.AbstractAsyncContextManager[Any]:
        """A ``socketio.AsyncClient`` connected to this instance, disconnected on exit."""
        return connected_socket(self.url, token)

    async def answer_stored(
        self, command: MessageSend, seq: int = 1, *, already: bool = False
    ) -> MessageView:
        """What chat publishes once it stored ``command``: ``message.created``, or
        ``message.already-stored`` for a command it had stored before."""
        view = stored_message(
            command.sender_id,
            command.conversation_id,
            command.client_message_id,
            seq=seq,
            content=command.content,
        )
        answer = MessageAlreadyStored(message=view) if already else MessageCreated(message=view)
        await self.publisher.publish_envelopes([make_envelope(answer, producer="chat")])
        return view

    @contextlib.asynccontextmanager
    async def probe(self, *keys: str) -> AsyncIterator[AbstractQueue]:
        """A queue of the test's own bound to ``keys`` on the ``chat`` exchange."""
        queue = await declare_probe_queue(self.broker, *keys)
        try:
            yield queue
        finally:
            await queue.delete(if_unused=False, if_empty=False)


async def next_command(queue: AbstractQueue) -> MessageSend:
    """The next ``message.send`` the gateway published, taken off a probe queue."""
    [message] = await collect(queue, 1, timeout=5)
    command = decode_envelope(message.body).data
    assert isinstance(command, MessageSend)
    return command
