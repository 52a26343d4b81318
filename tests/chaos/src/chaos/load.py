"""Steady load as real clients make it: users in small groups, each on several devices.

Every user sends on a steady cadence, alternating Socket.IO ``message:send`` and REST
``POST /api/chat/:id/messages``, each send with its own ``clientMessageId``, and resends with
the same id until the fleet acknowledges it, as docs/realtime.md tells clients to: after an ack
``timeout``, an ``internal`` error, a lost connection, a 5xx or a refused connection. Every
device keeps what it was delivered; after a reconnect (or a ``sync:required``) it asks
``sync`` for what came after the last seq it holds without a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

from e2e.accounts import accept, create_conversation, register

ACK_WAIT_SECONDS = 10.0
RETRY_PAUSE_SECONDS = 0.5
SYNC_PAGE_LIMIT = 100
LARGE_PADDING = 3000  # past MESSAGE_INLINE_BYTES (2048): the body is kept in MongoDB
# Resends that would be refused for good: the harness counts them, they are not retried.
FINAL_CODES = frozenset({"invalid", "not_found", "conflict", "forbidden"})


@dataclass
class Send:
    """One message a user means to send, from its first attempt to its ack."""

    client_message_id: str
    conversation_id: str
    sender_id: str
    via: str  # "socket" or "rest"
    first_at: float
    padding: int = 0  # characters added to the text: past 2048 bytes, the body is in MongoDB
    attempts: int = 0
    acked_at: float | None = None
    seq: int | None = None
    message_id: str | None = None
    refused: str | None = None

    @property
    def large(self) -> bool:
        return self.padding > 0

    def acked(self, message: dict[str, Any]) -> None:
        self.acked_at = time.monotonic()
        self.seq = int(message["seq"])
        self.message_id = str(message["id"])


@dataclass
class User:
    id: str
    token: str
    conversations: list[str] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)


def contiguous_head(seqs: set[int]) -> int:
    """The last seq held with none missing before it."""
    head = 0
    while head + 1 in seqs:
        head += 1
    return head


class Device:
    """One Socket.IO connection of a user, from its own loopback address (nginx keeps a client
    address on one gateway instance, so devices spread over both)."""

    def __init__(self, user: User, address: str, url: str) -> None:
        self.user = user
        self.address = address
        self.name = f"{user.id[:8]}@{address}"
        self.url = url
        self.held: dict[str, set[int]] = {}
        self.this_connection: dict[str, set[int]] = {}
        self.duplicates = 0
        self.duplicate_seqs: list[tuple[str, int]] = []
        self.arrivals: list[tuple[str, float]] = []  # (clientMessageId, when), live only
        self.connections = 0
        self.sync_failures = 0
        self.connected = asyncio.Event()
        self._syncing: asyncio.Task[None] | None = None
        self.client = socketio.AsyncClient(
            reconnection=True,
            reconnection_attempts=0,
            reconnection_delay=0.5,
            reconnection_delay_max=2,
            http_session=self._session,
        )
        self.client.on("connect", self._on_connect)
        self.client.on("disconnect", self._on_disconnect)
        self.client.on("message:received", self._on_message)
        self.client.on("sync:required", self._on_sync_required)

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(self.address, 0)))

    async def connect(self, deadline: float) -> None:
        while True:
            try:
                await self.client.connect(
                    self.url,
                    auth={"token": self.user.token},
                    transports=["websocket"],
                    wait_timeout=10,
                )
                return
            except socketio.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def _on_connect(self) -> None:
        self.connections += 1
        self.this_connection = {}
        self.connected.set()
        if self.connections > 1:  # a reconnect: catch up on what passed while away
            self._start_sync()

    async def _on_disconnect(self, *_: Any) -> None:
        self.connected.clear()

    async def _on_sync_required(self, *_: Any) -> None:
        self._start_sync()

    def _start_sync(self) -> None:
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.create_task(self.sync())

    async def _on_message(self, view: dict[str, Any]) -> None:
        conversation = str(view["conversationId"])
        seq = int(view["seq"])
        seen = self.this_connection.setdefault(conversation, set())
        if seq in seen:
            self.duplicates += 1  # the same message twice on one connection
            self.duplicate_seqs.append((conversation, seq))
        seen.add(seq)
        self.held.setdefault(conversation, set()).add(seq)
        self.arrivals.append((str(view.get("clientMessageId")), time.monotonic()))

    async def sync(self) -> None:
        """``sync`` from the contiguous head of every conversation, page by page."""
        pending = {c: contiguous_head(self.held.get(c, set())) for c in self.user.conversations}
        while pending:
            try:
                ack = await self.client.call("sync", {"since": pending}, timeout=ACK_WAIT_SECONDS)
            except (TimeoutError, socketio.exceptions.SocketIOError):
                self.sync_failures += 1
                if not self.client.connected:
                    return  # the next connect syncs again
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                continue
            if not ack.get("ok"):
                self.sync_failures += 1
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                continue
            following: dict[str, int] = {}
            for conversation, page in ack["conversations"].items():
                seqs = [int(m["seq"]) for m in page["messages"]]
                self.held.setdefault(conversation, set()).update(seqs)
                if page["hasMore"] and seqs:
                    following[conversation] = max(seqs)
            pending = following

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.disconnect(), 5)


@dataclass
class LoadShape:
    users: int = 24
    group_size: int = 4
    devices_per_user: int = 2
    send_interval: float = 1.0
    large_every: int = 0
    """Every n-th send of a user is larger than chat keeps inline (its body goes to MongoDB)."""


class Load:
    """Register the users, make their groups, connect their devices, then send until stopped."""

    def __init__(self, url: str, shape: LoadShape) -> None:
        self.url = url
        self.shape = shape
        self.users: list[User] = []
        self.sends: list[Send] = []
        self._senders: list[asyncio.Task[None]] = []
        self._deliveries: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self.started_at = 0.0
        self.stopped_at = 0.0
        self._addresses = itertools.cycle(f"127.0.0.{n}" for n in range(2, 250))
        self.http = aiohttp.ClientSession(
            base_url=url, timeout=aiohttp.ClientTimeout(total=ACK_WAIT_SECONDS)
        )

    @property
    def devices(self) -> list[Device]:
        return [device for user in self.users for device in user.devices]

    async def prepare(self) -> None:
        registered = await asyncio.gather(
            *(register(self.http, tag="chaos") for _ in range(self.shape.users))
        )
        self.users = [User(id=r["user"]["id"], token=r["token"]) for r in registered]
        size = self.shape.group_size
        for start in range(0, len(self.users), size):
            group = self.users[start : start + size]
            if len(group) < 2:
                group = self.users[start - 1 : start + 1]
            creator, *others = group
            status, body = await create_conversation(
                self.http,
                creator.token,
                {"participantIds": [u.id for u in others], "title": "chaos", "type": "group"},
            )
            if status not in (200, 201):
                raise RuntimeError(f"creating a group failed: {status} {body}")
            conversation_id = str(body["conversation"]["id"])
            for member in group:
                member.conversations.append(conversation_id)
            for member in others:
                await accept(self.http, {"token": member.token}, conversation_id)
        deadline = time.monotonic() + 60
        for user in self.users:
            user.devices = [
                Device(user, next(self._addresses), self.url)
                for _ in range(self.shape.devices_per_user)
            ]
        await asyncio.gather(*(d.connect(deadline) for d in self.devices))

    @property
    def duration(self) -> float:
        return (self.stopped_at or time.monotonic()) - self.started_at

    def latencies(self, since: float, until: float, skip: Device | None = None) -> list[float]:
        """Seconds from a send's first attempt to its live arrival at each other device, for
        arrivals between ``since`` and ``until``."""
        first = {s.client_message_id: s.first_at for s in self.sends}
        return [
            at - first[client_id]
            for device in self.devices
            if device is not skip
            for client_id, at in device.arrivals
            if since <= at < until and client_id in first
        ]

    def start(self) -> None:
        self.started_at = time.monotonic()
        for index, user in enumerate(self.users):
            self._senders.append(asyncio.create_task(self._send_steadily(user, index)))

    async def stop(self, drain_seconds: float = 120.0) -> None:
        """Stop starting sends; let every started one finish (acked or refused) or give up."""
        self._stop.set()
        self.stopped_at = time.monotonic()
        await asyncio.gather(*self._senders, return_exceptions=True)
        if self._deliveries:
            await asyncio.wait(self._deliveries, timeout=drain_seconds)
        for task in self._deliveries:
            task.cancel()

    async def close(self) -> None:
        await asyncio.gather(*(d.close() for d in self.devices))
        await self.http.close()

    async def _send_steadily(self, user: User, index: int) -> None:
        vias = itertools.cycle(("socket", "rest") if index % 2 == 0 else ("rest", "socket"))
        conversations = itertools.cycle(user.conversations)
        # Spread the users' first sends over one interval.
        await asyncio.sleep(self.shape.send_interval * index / max(len(self.users), 1))
        every = self.shape.large_every
        for count in itertools.count(1):
            if self._stop.is_set():
                break
            send = Send(
                client_message_id=str(uuid.uuid4()),
                conversation_id=next(conversations),
                sender_id=user.id,
                via=next(vias),
                first_at=time.monotonic(),
                padding=LARGE_PADDING if every and count % every == 0 else 0,
            )
            self.sends.append(send)
            deliver = self._by_socket if send.via == "socket" else self._by_rest
            task = asyncio.create_task(deliver(user, send))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.shape.send_interval)

    async def flood(
        self, user: User, conversation: str, stop: asyncio.Event, padding: int, per_second: float
    ) -> None:
        """Send large messages to one conversation over REST at ``per_second`` (or as fast as
        the fleet acknowledges them, if that is slower), until ``stop`` is set."""
        next_at = time.monotonic()
        while not stop.is_set():
            next_at += 1 / per_second
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(next_at - time.monotonic(), 0))
            if stop.is_set():
                break
            send = Send(
                client_message_id=str(uuid.uuid4()),
                conversation_id=conversation,
                sender_id=user.id,
                via="rest",
                first_at=time.monotonic(),
                padding=padding,
            )
            self.sends.append(send)
            await self._by_rest(user, send)

    async def _by_socket(self, user: User, send: Send) -> None:
        device = user.devices[0]
        body = {
            "conversationId": send.conversation_id,
            "content": _content(send),
            "clientMessageId": send.client_message_id,
        }
        while send.acked_at is None and send.refused is None:
            if not device.client.connected:
                await _pause_until(device.connected.wait)
                continue
            send.attempts += 1
            try:
                ack = await device.client.call("message:send", body, timeout=ACK_WAIT_SECONDS)
            except (TimeoutError, socketio.exceptions.SocketIOError):
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                continue
            if ack.get("ok"):
                send.acked(ack["message"])
            elif ack["error"]["code"] in FINAL_CODES:
                send.refused = f"{ack['error']['code']}: {ack['error']['message']}"
            else:  # timeout, internal, rate_limited: the same clientMessageId again
                await asyncio.sleep(RETRY_PAUSE_SECONDS)

    async def _by_rest(self, user: User, send: Send) -> None:
        body = {"content": _content(send), "clientMessageId": send.client_message_id}
        headers = {"Authorization": f"Bearer {user.token}"}
        path = f"/api/chat/{send.conversation_id}/messages"
        while send.acked_at is None and send.refused is None:
            send.attempts += 1
            try:
                async with self.http.post(path, json=body, headers=headers) as response:
                    status = response.status
                    payload = await response.json(content_type=None)
            except (TimeoutError, aiohttp.ClientError, ValueError):
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                continue
            if status in (200, 201):
                send.acked(payload["message"])
            elif status == 429 or status >= 500:
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
            else:
                send.refused = f"{status}: {payload}"


def _content(send: Send) -> str:
    text = f"chaos {send.client_message_id}"
    return f"{text} {'x' * send.padding}" if send.padding else text


async def _pause_until(wait: Callable[[], Any], seconds: float = 1.0) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wait(), seconds)
