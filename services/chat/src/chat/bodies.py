"""Message text above the inline threshold, in MongoDB ``message_bodies`` keyed by message id.

Writes are upserts keyed by the message id, so a retried send or edit rewrites the same
document; a body whose Postgres transaction rolled back is an orphan nobody reads.
"""

from __future__ import annotations

from uuid import UUID

from servicekit.mongo import MongoDatabase

COLLECTION = "message_bodies"


class MessageBodies:
    def __init__(self, database: MongoDatabase) -> None:
        self._bodies = database[COLLECTION]

    async def put(self, message_id: UUID, content: str) -> None:
        await self._bodies.replace_one(
            {"_id": str(message_id)}, {"_id": str(message_id), "content": content}, upsert=True
        )

    async def get_many(self, message_ids: list[UUID]) -> dict[UUID, str]:
        if not message_ids:
            return {}
        cursor = self._bodies.find({"_id": {"$in": [str(i) for i in message_ids]}})
        return {UUID(doc["_id"]): doc["content"] async for doc in cursor}

    async def delete(self, message_id: UUID) -> None:
        await self._bodies.delete_one({"_id": str(message_id)})
