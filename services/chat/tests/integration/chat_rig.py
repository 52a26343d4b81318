"""Chat under test, in-process: the server, its stores and publisher (``ChatServer``), one
test's HTTP view of it (``Api``) and the users it knows (``User``, minted tokens whose
registrations reached chat's replica). The fixtures that make them are in ``conftest.py``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from aiohttp import web

from chat.bodies import COLLECTION
from chat.config import ChatSettings
from contracts import make_envelope
from contracts.envelope import Envelope, decode_envelope
from contracts.events import MessageSend, UserRegistered
from contracts.names import MESSAGE_SEND, MESSAGES_QUEUE, dead_letter_queue
from devstack.broker_probe import collect_settled
from devstack.http_replies import Client, Reply, fetch_reply
from devstack.waiting import until, until_equal
from servicekit.amqp.publisher import ConfirmedPublisher, OutgoingMessage
from servicekit.http_app import METRICS
from servicekit.resources import MONGO, POSTGRES
from servicekit.tokens import TokenIssuer


@dataclass(frozen=True)
class User:
    id: str
    username: str
    display_name: str
    token: str

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(self.id)


@dataclass
class ChatServer:
    app: web.Application
    client: Client
    settings: ChatSettings
    database_url: str
    publisher: ConfirmedPublisher
    issuer: TokenIssuer
    broker: AbstractRobustConnection

    async def fetchval(self, query: str, *args: object) -> Any:
        return await self.app[POSTGRES].fetchval(query, *args)

    async def fetch(self, query: str, *args: object) -> list[Any]:
        return list(await self.app[POSTGRES].fetch(query, *args))

    async def make_admin(self, conversation_id: str, user: User) -> None:
        """Nothing in the API makes an admin yet, so the tests set the role in the store."""
        result = await self.app[POSTGRES].execute(
            "UPDATE participants SET role = 'admin' WHERE conversation_id = $1 AND user_id = $2",
            uuid.UUID(conversation_id),
            user.uuid,
        )
        assert result == "UPDATE 1"

    async def mongo_body(self, message_id: str) -> str | None:
        """The content MongoDB keeps for a message, if any."""
        found = await self.app[MONGO][COLLECTION].find_one({"_id": message_id})
        return None if found is None else str(found["content"])

    async def outbox_drained(self, timeout: float = 20.0) -> None:
        """Until the relay has published (with confirms) every event committed so far."""
        await until_equal(
            lambda: self.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"),
            0,
            timeout=timeout,
            interval=0.02,
        )

    def consumed(self, outcome: str, queue: str = MESSAGES_QUEUE) -> int:
        return self.app[METRICS].consumed(queue, outcome)

    async def consumed_reaches(self, outcome: str, count: int) -> None:
        await until(
            lambda: self.consumed(outcome) >= count,
            timeout=20,
            interval=0.02,
            what=lambda: f"{count} {outcome} messages (consumed {self.consumed(outcome)})",
        )

    def token_for(self, user_id: uuid.UUID) -> str:
        return self.issuer.issue(user_id, uuid.uuid4()).token

    async def register(self, count: int = 1, tag: str = "u") -> list[User]:
        """New users, announced by ``user.registered`` and present in chat's replica."""
        users = []
        for _ in range(count):
            user_id = uuid.uuid4()
            name = f"{tag}{user_id.hex[:12]}"
            users.append(User(str(user_id), name, f"{tag.upper()} {name}", self.token_for(user_id)))
        envelopes = [
            make_envelope(
                UserRegistered(
                    user_id=uuid.UUID(user.id),
                    email=f"{user.username}@example.com",
                    username=user.username,
                    display_name=user.display_name,
                    created_at=datetime.now(UTC),
                ),
                producer="auth",
            )
            for user in users
        ]
        await self.publisher.publish_envelopes(envelopes)
        ids = [uuid.UUID(user.id) for user in users]
        await until_equal(
            lambda: self.fetchval("SELECT count(*) FROM users WHERE id = ANY($1)", ids),
            count,
            timeout=20,
            interval=0.02,
            what="the new users in chat's replica",
        )
        return users

    async def one(self, tag: str = "u") -> User:
        [user] = await self.register(1, tag)
        return user

    async def publish_send(
        self,
        sender: User,
        conversation_id: str,
        content: str,
        client_message_id: str | None = None,
    ) -> Envelope[MessageSend]:
        """A ``message.send`` command, as the gateway publishes it; returns its envelope."""
        envelope = self.send_command(sender, conversation_id, content, client_message_id)
        await self.publisher.publish_envelopes([envelope])
        return envelope

    @staticmethod
    def send_command(
        sender: User, conversation_id: str, content: str, client_message_id: str | None = None
    ) -> Envelope[MessageSend]:
        return make_envelope(
            MessageSend(
                conversation_id=uuid.UUID(conversation_id),
                sender_id=sender.uuid,
                content=content,
                client_message_id=client_message_id or uuid.uuid4().hex,
                sent_at=datetime.now(UTC),
            ),
            producer="gateway",
        )

    async def publish_raw(self, body: bytes, routing_key: str = MESSAGE_SEND) -> str:
        """Any bytes as a message on ``chat``, confirmed; returns its message id."""
        message_id = uuid.uuid4().hex
        await self.publisher.publish(
            OutgoingMessage(
                routing_key=routing_key, body=body, message_id=message_id, type=routing_key
            )
        )
        return message_id

    async def dead_lettered(
        self, message_id: str, timeout: float = 20.0
    ) -> AbstractIncomingMessage:
        """The message ``messages.queue.dlq`` holds under ``message_id``, taken off the queue.

        Other dead letters are left unacked while looking and go back when the channel closes.
        """
        channel = await self.broker.channel()
        try:
            queue = await channel.declare_queue(dead_letter_queue(MESSAGES_QUEUE), passive=True)

            async def taken() -> AbstractIncomingMessage | None:
                while (message := await queue.get(fail=False)) is not None:
                    if message.message_id == message_id:
                        await message.ack()
                        return message
                return None

            return await until(taken, timeout=timeout, what=f"dead letter {message_id}")
        finally:
            await channel.close()

    async def events(self, queue: AbstractQueue) -> list[Envelope[Any]]:
        """Every event on ``queue`` once the outbox has published all that committed so far
        (confirmed publishes are already routed, so a short quiet spell is enough)."""
        await self.outbox_drained()
        messages: list[AbstractIncomingMessage] = await collect_settled(queue, quiet=0.3)
        return [decode_envelope(message.body) for message in messages]


@dataclass
class Api:
    client: Client

    async def call(
        self,
        method: str,
        path: str,
        *,
        user: User | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        sent: dict[str, str] = {}
        if user is not None:
            sent["Authorization"] = f"Bearer {user.token}"
        sent.update(headers or {})
        return await fetch_reply(
            self.client, method, path, json=json, data=data, headers=sent, params=params
        )

    async def create(
        self,
        creator: User,
        *others: User,
        type: str | None = None,
        title: str | None = None,
        status: int = 201,
    ) -> dict[str, Any]:
        """A conversation of ``creator`` with ``others`` (its JSON)."""
        body: dict[str, Any] = {"participantIds": [other.id for other in others]}
        if type is not None:
            body["type"] = type
        if title is not None:
            body["title"] = title
        reply = await self.call("POST", "/api/chat", user=creator, json=body)
        conversation: dict[str, Any] = reply.ok(status)["conversation"]
        return conversation

    async def group(self, creator: User, *others: User, title: str = "Team") -> str:
        return str((await self.create(creator, *others, type="group", title=title))["id"])

    async def send(
        self,
        sender: User,
        conversation_id: str,
        content: str,
        client_message_id: str | None = None,
        status: int = 201,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"content": content}
        if client_message_id is not None:
            body["clientMessageId"] = client_message_id
        reply = await self.call(
            "POST", f"/api/chat/{conversation_id}/messages", user=sender, json=body
        )
        message: dict[str, Any] = reply.ok(status)["message"]
        return message

    async def page(self, user: User, conversation_id: str, **params: str) -> dict[str, Any]:
        reply = await self.call(
            "GET", f"/api/chat/{conversation_id}/messages", user=user, params=params
        )
        page: dict[str, Any] = reply.ok()
        return page

    async def history(self, user: User, conversation_id: str, limit: int = 100) -> list[Any]:
        """Every message, paging forward with ``after`` from the start."""
        found: list[Any] = []
        after = 0
        for _ in range(10_000):
            page = await self.page(user, conversation_id, after=str(after), limit=str(limit))
            found += page["messages"]
            if not page["hasMore"]:
                return found
            after = page["messages"][-1]["seq"]
        raise AssertionError("the pages never ended")

    async def conversation(self, user: User, conversation_id: str) -> dict[str, Any]:
        reply = await self.call("GET", f"/api/chat/{conversation_id}", user=user)
        conversation: dict[str, Any] = reply.ok()["conversation"]
        return conversation
