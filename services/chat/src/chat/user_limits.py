"""How fast one user may make chat do work over REST: send messages, start conversations,
upload media. Token buckets in Redis (``servicekit.token_buckets``), so every chat instance
counts against the same budget; over it the request is refused (``TooMany``, a 429 with
``Retry-After``) and changes nothing. Sends over sockets are limited by the gateway before they
reach chat's queue."""

from __future__ import annotations

from uuid import UUID

from servicekit.refusals import TooMany
from servicekit.token_buckets import Bucket, TokenBuckets


class UserLimits:
    def __init__(
        self, buckets: TokenBuckets, *, send: Bucket, create: Bucket, upload: Bucket
    ) -> None:
        self._buckets = buckets
        self._send = send
        self._create = create
        self._upload = upload

    async def send(self, user_id: UUID) -> None:
        await self._take(self._send, user_id, "Too many messages")

    async def create(self, user_id: UUID) -> None:
        await self._take(self._create, user_id, "Too many new conversations")

    async def charge(self, user_id: UUID) -> None:
        """A new conversation (``ChatService``'s ``CreationLimit``)."""
        await self.create(user_id)

    async def upload(self, user_id: UUID) -> None:
        await self._take(self._upload, user_id, "Too many uploads")

    async def _take(self, bucket: Bucket, user_id: UUID, what: str) -> None:
        decision = await self._buckets.take([(bucket, str(user_id))])
        if not decision.allowed:
            seconds = decision.retry_after_seconds
            raise TooMany(f"{what}; retry in {seconds}s", seconds)
