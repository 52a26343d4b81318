"""The chat service's composition root: the only place that builds its I/O clients.

``create_app`` opens, in order: the stores and the token verifier (the kit's), ``chat_services``
(the HTTP client to auth and every service the handlers and consumers use, under typed app
keys), then the broker side, whose consumers take those services from the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from chat.block_service import BlockService
from chat.bodies import MessageBodies
from chat.change_log import ChangeLog
from chat.config import SERVICE, ChatSettings
from chat.consumers import ChatEventsConsumer, MessageSendConsumer
from chat.handlers import BLOCK_SERVICE, CHAT_SERVICE, USER_LIMITS
from chat.media.handlers import MEDIA_SERVICE
from chat.media.repository import MediaRepository
from chat.media.routes import MEDIA_ENDPOINTS
from chat.media.service import MediaService
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
from servicekit.unit_of_work import PostgresUnitOfWork

Handle = Callable[[Envelope[Any], Connection], Awaitable[None]]


def migration_sets() -> list[MigrationSet]:
    return [service_kit_migrations(), MigrationSet.from_package(SERVICE)]


def create_app(settings: ChatSettings) -> web.Application:
    platform = settings.platform
    blobs = FilesystemBlobStore(settings.media_root)

    async def chat_services(app: web.Application) -> AsyncIterator[None]:
        keys = KeySpace(platform.redis.key_prefix)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            app[USER_LIMITS] = UserLimits(
                TokenBuckets(app[REDIS], keys),
                send=settings.send_limit,
                create=settings.create_limit,
                upload=settings.upload_limit,
            )
            uow = PostgresUnitOfWork(app[POSTGRES], SERVICE)
            app[MEDIA_SERVICE] = MediaService(
                uow=uow,
                store=MediaRepository(),
                blobs=blobs,
                max_bytes=settings.media_max_bytes,
                quota_bytes=settings.media_quota_bytes,
            )
            store = ChatRepository()
            auth = PeerApi(http, settings.auth_url, "auth")
            people = PeopleRepository()
            app[CHAT_SERVICE] = ChatService(
                uow=uow,
                store=store,
                users=store,
                changes=ChangeLog(),
                directory=UserDirectory(uow, store, auth),
                people=people,
                bodies=MessageBodies(app[MONGO]),
                inline_body_bytes=settings.inline_body_bytes,
                attachments=app[MEDIA_SERVICE],
                creations=app[USER_LIMITS],
            )
            app[BLOCK_SERVICE] = BlockService(uow=uow, store=people)
            yield

    def consumer(queue: str, handler: Callable[[web.Application], Handle]) -> ConsumerFactory:
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
        sends = MessageSendConsumer(app[CHAT_SERVICE])
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

    def chat_events(app: web.Application) -> Handle:
        return ChatEventsConsumer(app[CHAT_SERVICE], app[MEDIA_SERVICE])

    app = build_service_app(
        settings.service,
        migrations=migration_sets(),
        services=[chat_services],
        consumers=[message_sends, consumer(CHAT_EVENTS_QUEUE, chat_events)],
    )
    add_readiness_check(app, "media", blobs.probe)
    endpoints = (*ENDPOINTS, *MEDIA_ENDPOINTS)
    add_endpoints(app, endpoints)
    document = openapi_document(title="Chat API", version="1", endpoints=endpoints)
    app.router.add_routes([openapi_route(OPENAPI_PATH, document)])
    return app
