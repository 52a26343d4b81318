"""Extended profiles in MongoDB ``profiles``: one document per user, keyed by the user id."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from servicekit.mongo import MongoDatabase

COLLECTION = "profiles"
PROFILE_FIELDS = ("bio", "avatarMediaId", "statusText", "timezone")


class ProfileStore:
    def __init__(self, database: MongoDatabase) -> None:
        self._profiles = database[COLLECTION]

    async def get(self, user_id: UUID) -> dict[str, Any]:
        document = await self._profiles.find_one({"_id": str(user_id)})
        return _public(document)

    async def get_many(self, user_ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
        cursor = self._profiles.find({"_id": {"$in": [str(user_id) for user_id in user_ids]}})
        return {UUID(document["_id"]): _public(document) async for document in cursor}

    async def update(self, user_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
        """Set the given fields (``None`` clears one); returns the whole profile."""
        to_set = {key: value for key, value in changes.items() if value is not None}
        to_unset = {key: "" for key, value in changes.items() if value is None}
        update: dict[str, Any] = {}
        if to_set:
            update["$set"] = to_set
        if to_unset:
            update["$unset"] = to_unset
        if update:
            await self._profiles.update_one({"_id": str(user_id)}, update, upsert=True)
        return await self.get(user_id)

    async def delete(self, user_id: UUID) -> None:
        await self._profiles.delete_one({"_id": str(user_id)})


def _public(document: dict[str, Any] | None) -> dict[str, Any]:
    if document is None:
        return {}
    return {key: document[key] for key in PROFILE_FIELDS if key in document}
