"""The gateway's composition root: aiohttp + python-socketio on the service kit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from contracts.names import gateway_queue
from contracts.topology import GATEWAY_BINDING_KEYS
from gateway.audience import PresenceAudience
from gateway.catch_up import CatchUp
from gateway.chat_client import ChatClient
from gateway.config import GatewaySettings
from gateway.connections import Connections
from gateway.conversation_activity import ConversationActivities
from gateway.engaged_presence import EngagedPresence
from gateway.event_bus import ConfirmedEventBus
from gateway.fanout import FanOut
from gateway.long_polls import LongPolls
from gateway.lost_state import LostStateRestore
from gateway.memberships import MembershipDirectory
from gateway.message_sending import MessageSending
from gateway.pending_sends import PendingSends
from gateway.presence import Presence
from gateway.presence_lookup import PresenceLookup
from gateway.resync import ResyncOnReconnect
from gateway.room_broadcast import RoomBroadcast
from gateway.rooms import SocketIoRooms
from gateway.send_checks import SendChecks
from gateway.socketio_internals import WebSocketTransports, close_sessions
from gateway.sockets import SocketHandlers, create_socket_server
from servicekit.amqp.batched_acks import BatchedAcks
from servicekit.amqp.topology import declare_instance_queue
from servicekit.messaging import MESSAGING
from servicekit.redis_store import KeySpace
from servicekit.resources import REDIS, build_service_app
from servicekit.token_buckets import TokenBuckets
from servicekit.tokens import TOKEN_VERIFIER

CLOSE_GRACE_SECONDS = 2.0


def create_app(settings: GatewaySettings) -> web.Application:
    platform = settings.platform
    app = build_service_app(settings.service)
    transports = WebSocketTransports()
    sio = create_socket_server(settings.cors_origins, settings.max_payload_bytes, transports)
    sio.attach(app, socketio_path="socket.io")
    long_polls = LongPolls()
    app.middlewares.append(long_polls.track)

    async def realtime(app: web.Application) -> AsyncIterator[None]:
        keys = KeySpace(platform.redis.key_prefix)
        redis = app[REDIS]
        verifier = app[TOKEN_VERIFIER]
        messaging = app[MESSAGING]
        pending = PendingSends()
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10),
            connector=aiohttp.TCPConnector(limit=settings.chat_max_connections),
        ) as http:
            chat = ChatClient(http, settings.chat_url)
            memberships = MembershipDirectory(redis, keys, chat, settings.membership_cache_seconds)
            audience = PresenceAudience(redis, keys)
            limiter = TokenBuckets(redis, keys)
            send_checks = SendChecks(redis, keys, limiter, memberships, settings.send_limits)
            presence = Presence(redis, keys, settings.max_sockets_per_user)
            bus = ConfirmedEventBus(messaging.publisher)
            rooms = SocketIoRooms(sio)
            handlers = SocketHandlers(
                sio=sio,
                limiter=limiter,
                event_limits=settings.event_limits,
                connections=Connections(
                    tokens=verifier,
                    chat=chat,
                    rooms=rooms,
                    presence=presence,
                    audience=audience,
                    bus=bus,
                    lost_state=LostStateRestore(
                        redis=redis,
                        keys=keys,
                        instance_id=platform.instance_id,
                        presence=presence,
                        audience=audience,
                        chat=chat,
                    ),
                ),
                sending=MessageSending(
                    checks=send_checks,
                    pending=pending,
                    bus=bus,
                    ack_timeout=settings.ack_timeout_seconds,
                ),
                activities=ConversationActivities(
                    memberships=memberships, bus=bus, rooms=rooms, presence=presence
                ),
                catch_up=CatchUp(chat),
                presence_lookup=PresenceLookup(audience, presence),
            )
            handlers.register()
            heartbeat = asyncio.create_task(handlers.keep_presence(), name="presence-heartbeat")
            channel = await messaging.connection.channel()
            await channel.set_qos(prefetch_count=256)
            queue = await declare_instance_queue(
                channel, gateway_queue(platform.instance_id), GATEWAY_BINDING_KEYS
            )
            acks = BatchedAcks()
            fanout = FanOut(
                sio,
                broadcast := RoomBroadcast(sio, transports),
                memberships,
                pending,
                audience,
                acks=acks,
                engaged=EngagedPresence(broadcast, audience, presence, memberships),
            )
            tag = await queue.consume(fanout.on_message)
            resync = ResyncOnReconnect.watching(messaging.connection, sio)
            yield
            resync.unwatch(messaging.connection)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await queue.cancel(tag)
            await acks.drain()
            await channel.close()
            await send_checks.drain()

    async def disconnect_sockets(_: web.Application) -> None:
        # Ends every session and every held long-poll, so the drain does not wait on them;
        # clients reconnect to another instance. A session's close waits until its client has
        # taken the CLOSE packet, which a polling client that never polls again never does:
        # the wait is bounded (engineio's own disconnect-all is not).
        await close_sessions(sio, CLOSE_GRACE_SECONDS)
        long_polls.cancel_all()
        await sio.shutdown()

    app.on_shutdown.append(disconnect_sockets)
    app.cleanup_ctx.append(realtime)
    return app
