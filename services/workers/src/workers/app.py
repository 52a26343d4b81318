"""The workers service's composition root: the notifications API and the queue consumers,
built on the service kit."""

from __future__ import annotations

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
from servicekit.tokens import TOKEN_VERIFIER, RevocationList, TokenVerifier
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
from workers.push_apns import ApnsSender
from workers.push_delivery import PushDelivery, PushMetrics
from workers.push_fcm import FcmSender
from workers.push_sender import PushSender
from workers.push_web import WebPushSender
from workers.routes import ENDPOINTS, OPENAPI_PATH


class NotificationsConsumer:
    """The notifications runner, started once the store's indexes exist (its effects rely on
    them) and stopped before the pacer sends what it still holds."""

    def __init__(
        self, store: NotificationStore, runner: Consumer, announcements: AnnouncementPacer
    ) -> None:
        self._store = store
        self._runner = runner
        self._announcements = announcements

    async def start(self) -> None:
        await self._store.create_indexes()
        await self._runner.start()

    async def stop(self, timeout: float = 10.0) -> None:
        await self._runner.stop(timeout)
        await self._announcements.close()


class PushConsumer:
    """The push runner, started once the device indexes exist; its HTTP clients close after
    it stops."""

    def __init__(self, devices: DeviceStore, runner: Consumer, clients: PushClients) -> None:
        self._devices = devices
        self._runner = runner
        self._clients = clients

    async def start(self) -> None:
        await self._devices.create_indexes()
        await self._runner.start()

    async def stop(self, timeout: float = 10.0) -> None:
        await self._runner.stop(timeout)
        await self._clients.close()


class PushClients:
    """The HTTP clients of the push adapters: aiohttp for Web Push and FCM, httpx over HTTP/2
    for APNs; opened on first use, inside the running loop."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._http2: httpx.AsyncClient | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._session

    def http2(self) -> httpx.AsyncClient:
        if self._http2 is None:
            self._http2 = httpx.AsyncClient(http1=False, http2=True, timeout=15.0)
        return self._http2

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._http2 is not None:
            await self._http2.aclose()


def push_senders(settings: PushSettings, clients: PushClients) -> dict[Platform, PushSender]:
    """One adapter per platform whose credentials are configured."""
    senders: dict[Platform, PushSender] = {}
    if settings.web_push is not None:
        senders["webpush"] = WebPushSender(settings.web_push, clients.session())
    if settings.fcm is not None:
        senders["fcm"] = FcmSender(settings.fcm, clients.session())
    if settings.apns is not None:
        senders["apns"] = ApnsSender(settings.apns, clients.http2())
    return senders


def create_app(settings: WorkersSettings) -> web.Application:
    platform = settings.platform
    limits = ImageLimits(settings.media.max_pixels, settings.media.thumbnail_size)
    guard_against_bombs(limits)
    blobs = FilesystemBlobStore(settings.media.root)
    keys = KeySpace(platform.redis.key_prefix)

    clients = PushClients()
    senders: dict[Platform, PushSender] = {}

    def shared_senders() -> dict[Platform, PushSender]:
        """One adapter per platform for the API and the consumer (one key, one token cache)."""
        if not senders:
            senders.update(push_senders(settings.push, clients))
        return senders

    def stores(app: web.Application) -> NotificationStore:
        """Built once, when the stores are open (the first consumer or request needs them)."""
        if NOTIFICATION_STORE not in app:
            app[NOTIFICATION_STORE] = NotificationStore(app[MONGO])
            app[TOKEN_VERIFIER] = TokenVerifier(platform.jwt, RevocationList(app[REDIS], keys))
            app[DEVICE_REGISTRATIONS] = DeviceRegistrations(
                DeviceStore(app[MONGO]),
                shared_senders(),
                allow_plain_http=platform.profile != "production",
            )
        return app[NOTIFICATION_STORE]

    def push_consumer(app: web.Application, messaging: Messaging) -> Consumer:
        stores(app)
        devices = DeviceStore(app[MONGO])
        runner = ConsumerRunner(
            name="workers.push",
            queue=queue_spec(PUSH_QUEUE),
            handle=PushDelivery(
                devices=devices,
                presence=PresenceReader(app[REDIS], keys),
                senders=shared_senders(),
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
        return PushConsumer(devices, runner, clients)

    def notifications_consumer(app: web.Application, messaging: Messaging) -> Consumer:
        store = stores(app)
        announcements = AnnouncementPacer(
            messaging.publisher.publish_envelopes, settings.notification_push_interval
        )
        runner = ConsumerRunner(
            name="workers.notifications",
            queue=queue_spec(NOTIFICATIONS_QUEUE),
            handle=MessageNotifications(store, PresenceReader(app[REDIS], keys), announcements),
            # The store absorbs each event once by its id: a second record would only cost.
            inbox=IdempotentEffects(),
            connection=messaging.connection,
            publisher=messaging.publisher,
            settings=platform.amqp,
            metrics=app[METRICS],
        )
        return NotificationsConsumer(store, runner, announcements)

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
        settings.service, consumers=[notifications_consumer, media_consumer, push_consumer]
    )
    add_readiness_check(app, "media", blobs.probe)
    add_endpoints(app, ENDPOINTS)
    document = openapi_document(title="Notifications API", version="1", endpoints=ENDPOINTS)
    app.router.add_routes([openapi_route(OPENAPI_PATH, document)])
    return app
