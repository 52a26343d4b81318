"""The workers service's composition root: the notifications API and the queue consumers,
built on the service kit.

``create_app`` opens, in order: the stores and the token verifier (the kit's),
``workers_services`` (the push adapters with their HTTP clients, and the notification and
device stores with their indexes, under typed app keys), then the broker side, whose consumers
take those from the app. The API therefore relies on no consumer having started.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import aiohttp
import httpx
from aiohttp import web

from contracts.names import MEDIA_QUEUE, NOTIFICATIONS_QUEUE, PUSH_QUEUE
from servicekit.amqp.consumer import ConsumerRunner
from servicekit.amqp.topology import queue_spec
from servicekit.blob_store import FilesystemBlobStore
from servicekit.http_app import METRICS, add_readiness_check
from servicekit.inbox import IdempotentEffects, MongoInbox
from servicekit.messaging import Consumer, Messaging
from servicekit.openapi import add_endpoints, openapi_document, openapi_route
from servicekit.presence_keys import PresenceReader
from servicekit.redis_store import KeySpace
from servicekit.resources import MONGO, REDIS, build_service_app
from workers.announcements import AnnouncementPacer
from workers.config import PushSettings, WorkersSettings
from workers.device_api import DEVICE_REGISTRATIONS
from workers.device_registrations import DeviceRegistrations
from workers.devices import DeviceStore, Platform
from workers.media import MediaUploads
from workers.media_images import ImageLimits, guard_against_bombs
from workers.notification_store import NotificationStore
from workers.notifications import MessageNotifications
from workers.notifications_api import NOTIFICATION_STORE
from workers.notifications_consumer import NotificationsConsumer
from workers.push_apns import ApnsSender
from workers.push_delivery import PushDelivery, PushMetrics
from workers.push_fcm import FcmSender
from workers.push_sender import PushSender
from workers.push_web import WebPushSender
from workers.routes import ENDPOINTS, OPENAPI_PATH

DEVICE_STORE = web.AppKey("device_store", DeviceStore)
PUSH_SENDERS: web.AppKey[Mapping[Platform, PushSender]] = web.AppKey("push_senders")


@contextlib.asynccontextmanager
async def push_senders(settings: PushSettings) -> AsyncIterator[dict[Platform, PushSender]]:
    """One adapter per platform whose credentials are configured, over the HTTP clients those
    platforms use (aiohttp for Web Push and FCM, httpx over HTTP/2 for APNs), closed on exit."""
    async with contextlib.AsyncExitStack() as clients:
        senders: dict[Platform, PushSender] = {}
        if settings.web_push is not None or settings.fcm is not None:
            session = await clients.enter_async_context(
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
            )
            if settings.web_push is not None:
                senders["webpush"] = WebPushSender(settings.web_push, session)
            if settings.fcm is not None:
                senders["fcm"] = FcmSender(settings.fcm, session)
        if settings.apns is not None:
            http2 = await clients.enter_async_context(
                httpx.AsyncClient(http1=False, http2=True, timeout=15.0)
            )
            senders["apns"] = ApnsSender(settings.apns, http2)
        yield senders


def create_app(settings: WorkersSettings) -> web.Application:
    platform = settings.platform
    limits = ImageLimits(settings.media.max_pixels, settings.media.thumbnail_size)
    guard_against_bombs(limits)
    blobs = FilesystemBlobStore(settings.media.root)
    keys = KeySpace(platform.redis.key_prefix)

    async def workers_services(app: web.Application) -> AsyncIterator[None]:
        # The stores' effects and the API's answers rely on their indexes (unique keys).
        notifications = NotificationStore(app[MONGO])
        await notifications.create_indexes()
        devices = DeviceStore(app[MONGO])
        await devices.create_indexes()
        app[NOTIFICATION_STORE] = notifications
        app[DEVICE_STORE] = devices
        # One adapter per platform for the API and the consumer (one key, one token cache).
        async with push_senders(settings.push) as senders:
            app[PUSH_SENDERS] = senders
            app[DEVICE_REGISTRATIONS] = DeviceRegistrations(
                devices, senders, allow_plain_http=platform.profile != "production"
            )
            yield

    def push_consumer(app: web.Application, messaging: Messaging) -> Consumer:
        return ConsumerRunner(
            name="workers.push",
            queue=queue_spec(PUSH_QUEUE),
            handle=PushDelivery(
                devices=app[DEVICE_STORE],
                presence=PresenceReader(app[REDIS], keys),
                senders=app[PUSH_SENDERS],
                max_attempts=settings.push.max_attempts,
                metrics=PushMetrics(app[METRICS].registry),
            ),
            # A repeat pushes again; the platforms' collapse keys fold it (push_delivery).
            inbox=IdempotentEffects(),
            connection=messaging.connection,
            publisher=messaging.publisher,
            settings=platform.amqp,
            metrics=app[METRICS],
            handler_timeout=120.0,
        )

    def notifications_consumer(app: web.Application, messaging: Messaging) -> Consumer:
        announcements = AnnouncementPacer(
            messaging.publisher.publish_envelopes, settings.notification_push_interval
        )
        runner = ConsumerRunner(
            name="workers.notifications",
            queue=queue_spec(NOTIFICATIONS_QUEUE),
            handle=MessageNotifications(
                app[NOTIFICATION_STORE], PresenceReader(app[REDIS], keys), announcements
            ),
            # The store absorbs each event once by its id: a second record would only cost.
            inbox=IdempotentEffects(),
            connection=messaging.connection,
            publisher=messaging.publisher,
            settings=platform.amqp,
            metrics=app[METRICS],
        )
        return NotificationsConsumer(runner, announcements)

    def media_consumer(app: web.Application, messaging: Messaging) -> Consumer:
        return ConsumerRunner(
            name="workers.media",
            queue=queue_spec(MEDIA_QUEUE),
            handle=MediaUploads(
                blobs=blobs,
                publisher=messaging.publisher,
                limits=limits,
                concurrency=settings.media.concurrency,
                decode_budget_bytes=settings.media.decode_budget_bytes,
            ),
            inbox=MongoInbox(app[MONGO]),
            connection=messaging.connection,
            publisher=messaging.publisher,
            settings=platform.amqp,
            metrics=app[METRICS],
            # Big images take a while in the thread; a stuck decode still ends in a retry.
            handler_timeout=120.0,
        )

    app = build_service_app(
        settings.service,
        services=[workers_services],
        consumers=[notifications_consumer, media_consumer, push_consumer],
    )
    add_readiness_check(app, "media", blobs.probe)
    add_endpoints(app, ENDPOINTS)
    document = openapi_document(title="Notifications API", version="1", endpoints=ENDPOINTS)
    app.router.add_routes([openapi_route(OPENAPI_PATH, document)])
    return app
