"""The chat service's composition root: the only place that builds its I/O clients."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from chat.block_service import BlockService
from chat.bodies import MessageBodies
from chat.change_log import ChangeLog
from chat.config import SERVICE, ChatSettings
from chat.consumers import ChatEventsConsumer, MessageSendConsumer
from chat.handlers import BLOCK_SERVICE, CHAT_SERVICE, USER_LIMITS
from chat.media_handlers import MEDIA_SERVICE
from chat.media_repository import MediaRepository
from chat.media_routes import MEDIA_ENDPOINTS
from chat.media_service import MediaService
from chat.people_repository import PeopleRepository
from chat.repository import ChatRepository
from chat.routes import ENDPOINTS, OPENAPI_PATH
from chat.service import ChatService
from chat.user_directory import UserDirectory
from chat.user_limits import UserLimits
from contracts.envelope import Envelope
from contracts.names import CHAT_EVENTS_QUEUE, MESSAGES_QUEUE
from servicekit.amqp.batch_consumer import BatchConsumerRunner
from servicekit.amqp.consumer import ConsumerRunner
from servicekit.amqp.topology import queue_spec
from servicekit.blob_store import FilesystemBlobStore
from servicekit.http_app import METRICS, add_readiness_check
from servicekit.inbox import IdempotentEffects, PostgresInbox
from servicekit.messaging import ConsumerFactory, Messaging
from servicekit.migrations import MigrationSet, service_kit_migrations
from servicekit.openapi import add_endpoints, openapi_document, openapi_route
from servicekit.peer_api import PeerApi
from servicekit.postgres import Connection
from servicekit.redis_store import KeySpace
from servicekit.resources import MONGO, POSTGRES, REDIS, build_service_app
from servicekit.token_buckets import TokenBuckets
from servicekit.tokens import TOKEN_VERIFIER, RevocationList, TokenVerifier

Handle = Callable[[Envelope[Any], Connection], Awaitable[None]]


def migration_sets() -> list[MigrationSet]:
    return [service_kit_migrations(), MigrationSet.from_package(SERVICE)]


def create_app(settings: ChatSettings) -> web.Application:
    platform = settings.platform
    blobs = FilesystemBlobStore(settings.media_root)

    def media(app: web.Application) -> MediaService:
        if MEDIA_SERVICE not in app:
            app[MEDIA_SERVICE] = MediaService(
                pool=app[POSTGRES],
                store=MediaRepository(),
                blobs=blobs,
                max_bytes=settings.media_max_bytes,
                quota_bytes=settings.media_quota_bytes,
            )
        return app[MEDIA_SERVICE]

    def service(app: web.Application) -> ChatService:
        """Built once, when the stores are open (the first consumer or request needs it)."""
        if CHAT_SERVICE not in app:
            keys = KeySpace(platform.redis.key_prefix)
            app[USER_LIMITS] = UserLimits(
                TokenBuckets(app[REDIS], keys),
                send=settings.send_limit,
                create=settings.create_limit,
                upload=settings.upload_limit,
            )
            http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
            app.on_cleanup.append(lambda _: http.close())
            store = ChatRepository()
            auth = PeerApi(http, settings.auth_url, "auth")
            app[CHAT_SERVICE] = ChatService(
                pool=app[POSTGRES],
                store=store,
                changes=ChangeLog(),
                directory=UserDirectory(app[POSTGRES], store, auth),
                people=PeopleRepository(),
                bodies=MessageBodies(app[MONGO]),
                inline_body_bytes=settings.inline_body_bytes,
                attachments=media(app),
                creations=app[USER_LIMITS],
            )
            app[BLOCK_SERVICE] = BlockService(pool=app[POSTGRES], store=PeopleRepository())
            app[TOKEN_VERIFIER] = TokenVerifier(platform.jwt, RevocationList(app[REDIS], keys))
        return app[CHAT_SERVICE]

    def consumer(
        queue: str,
        handler: Callable[
            [web.Application], Callable[[Envelope[Any], Connection], Awaitable[None]]
        ],
    ) -> ConsumerFactory:
        def build(app: web.Application, messaging: Messaging) -> ConsumerRunner[Connection]:
            return ConsumerRunner(
                name=f"chat.{queue}",
                queue=queue_spec(queue),
                handle=handler(app),
                inbox=PostgresInbox(app[POSTGRES]),
                connection=messaging.connection,
                publisher=messaging.publisher,
                settings=platform.amqp,
                metrics=app[METRICS],
            )

        return build

    def message_sends(app: web.Application, messaging: Messaging) -> ConsumerRunner[None]:
        """Batches: what arrived together is stored in one transaction (docs/chat.md)."""
        sends = MessageSendConsumer(service(app))
        return BatchConsumerRunner(
            handle_batch=sends.handle_batch,
            max_batch=platform.amqp.prefetch,
            name=f"chat.{MESSAGES_QUEUE}",
            queue=queue_spec(MESSAGES_QUEUE),
            handle=sends,
            inbox=IdempotentEffects(),
            connection=messaging.connection,
            publisher=messaging.publisher,
            settings=platform.amqp,
            metrics=app[METRICS],
        )

    app = build_service_app(
        settings.service,
        migrations=migration_sets(),
        consumers=[
            message_sends,
            consumer(CHAT_EVENTS_QUEUE, lambda app: ChatEventsConsumer(service(app), media(app))),
        ],
    )
    add_readiness_check(app, "media", blobs.probe)
    endpoints = (*ENDPOINTS, *MEDIA_ENDPOINTS)
    add_endpoints(app, endpoints)
    document = openapi_document(title="Chat API", version="1", endpoints=endpoints)
    app.router.add_routes([openapi_route(OPENAPI_PATH, document)])
    return app
