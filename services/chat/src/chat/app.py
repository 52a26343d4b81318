"""The chat service's composition root: the only place that builds its I/O clients."""

from __future__ import annotations

from aiohttp import web

from chat.bodies import MessageBodies
from chat.config import SERVICE, ChatSettings
from chat.consumers import MessageSendConsumer, UserDirectoryConsumer
from chat.handlers import CHAT_SERVICE
from chat.repository import ChatRepository
from chat.routes import ENDPOINTS, OPENAPI_PATH
from chat.service import ChatService
from contracts.names import CHAT_EVENTS_QUEUE, MESSAGES_QUEUE
from servicekit.amqp.consumer import ConsumerRunner
from servicekit.amqp.topology import queue_spec
from servicekit.http_app import METRICS
from servicekit.inbox import PostgresInbox
from servicekit.messaging import ConsumerFactory, Messaging
from servicekit.migrations import MigrationSet, service_kit_migrations
from servicekit.openapi import add_endpoints, openapi_document, openapi_route
from servicekit.postgres import Connection
from servicekit.redis_store import KeySpace
from servicekit.resources import MONGO, POSTGRES, REDIS, build_service_app
from servicekit.tokens import TOKEN_VERIFIER, RevocationList, TokenVerifier


def migration_sets() -> list[MigrationSet]:
    return [service_kit_migrations(), MigrationSet.from_package(SERVICE)]


def create_app(settings: ChatSettings) -> web.Application:
    platform = settings.platform

    def service(app: web.Application) -> ChatService:
        """Built once, when the stores are open (the first consumer or request needs it)."""
        if CHAT_SERVICE not in app:
            app[CHAT_SERVICE] = ChatService(
                pool=app[POSTGRES],
                store=ChatRepository(),
                bodies=MessageBodies(app[MONGO]),
                inline_body_bytes=settings.inline_body_bytes,
            )
            revocations = RevocationList(app[REDIS], KeySpace(platform.redis.key_prefix))
            app[TOKEN_VERIFIER] = TokenVerifier(platform.jwt, revocations)
        return app[CHAT_SERVICE]

    def consumer(
        queue: str, handler: type[MessageSendConsumer | UserDirectoryConsumer]
    ) -> ConsumerFactory:
        def build(app: web.Application, messaging: Messaging) -> ConsumerRunner[Connection]:
            return ConsumerRunner(
                name=f"chat.{queue}",
                queue=queue_spec(queue),
                handle=handler(service(app)),
                inbox=PostgresInbox(app[POSTGRES]),
                connection=messaging.connection,
                publisher=messaging.publisher,
                settings=platform.amqp,
                metrics=app[METRICS],
            )

        return build

    app = build_service_app(
        settings.service,
        migrations=migration_sets(),
        consumers=[
            consumer(MESSAGES_QUEUE, MessageSendConsumer),
            consumer(CHAT_EVENTS_QUEUE, UserDirectoryConsumer),
        ],
    )
    add_endpoints(app, ENDPOINTS)
    document = openapi_document(title="Chat API", version="1", endpoints=ENDPOINTS)
    app.router.add_routes([openapi_route(OPENAPI_PATH, document)])
    return app
