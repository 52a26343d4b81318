"""Push devices in MongoDB ``devices``: where a user's notifications are pushed while they are
not looking (docs/notifications.md, "Push to devices").

A device is one app install or browser: its platform (``webpush``, ``fcm``, ``apns``), the
address the platform gave it (a Web Push subscription's endpoint and keys, an FCM registration
token, an APNs device token), the session that registered it (signing that session out
removes it) and whether its pushes may show message text. The address is unique: registering
it again (a new login on the same phone) moves it to the new session and user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo import ReturnDocument

from servicekit.mongo import MongoDatabase

COLLECTION = "devices"
Platform = Literal["webpush", "fcm", "apns"]


@dataclass(frozen=True, slots=True)
class Device:
    id: uuid.UUID
    user_id: uuid.UUID
    session_id: uuid.UUID
    platform: Platform
    token: str
    """The FCM or APNs token, or the Web Push endpoint."""
    keys: dict[str, str]
    """Web Push only: the subscription's ``p256dh`` and ``auth``."""
    previews: bool
    created_at: datetime


class DeviceStore:
    def __init__(self, database: MongoDatabase) -> None:
        self._devices = database[COLLECTION]

    async def create_indexes(self) -> None:
        await self._devices.create_index([("platform", 1), ("token", 1)], unique=True)
        await self._devices.create_index("userId")
        await self._devices.create_index("sessionId")

    async def register(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        platform: Platform,
        token: str,
        keys: dict[str, str],
        previews: bool,
    ) -> Device:
        now = datetime.now(UTC)
        document = await self._devices.find_one_and_update(
            {"platform": platform, "token": token},
            {
                "$set": {
                    "userId": str(user_id),
                    "sessionId": str(session_id),
                    "keys": keys,
                    "previews": previews,
                },
                "$setOnInsert": {"_id": str(uuid.uuid4()), "createdAt": now},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert document is not None  # upserted
        return _device(document)

    async def of_user(self, user_id: uuid.UUID) -> list[Device]:
        cursor = self._devices.find({"userId": str(user_id)}).sort("createdAt", 1)
        return [_device(document) async for document in cursor]

    async def remove(self, user_id: uuid.UUID, device_id: uuid.UUID) -> bool:
        result = await self._devices.delete_one({"_id": str(device_id), "userId": str(user_id)})
        return bool(result.deleted_count)

    async def remove_gone(self, device_id: uuid.UUID) -> None:
        await self._devices.delete_one({"_id": str(device_id)})

    async def remove_session(self, session_id: uuid.UUID) -> int:
        result = await self._devices.delete_many({"sessionId": str(session_id)})
        return result.deleted_count

    async def remove_user(self, user_id: uuid.UUID) -> int:
        result = await self._devices.delete_many({"userId": str(user_id)})
        return result.deleted_count


def _device(document: dict[str, Any]) -> Device:
    created = document["createdAt"]
    return Device(
        id=uuid.UUID(document["_id"]),
        user_id=uuid.UUID(document["userId"]),
        session_id=uuid.UUID(document["sessionId"]),
        platform=document["platform"],
        token=document["token"],
        keys=dict(document.get("keys") or {}),
        previews=bool(document.get("previews")),
        created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
    )
