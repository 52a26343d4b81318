"""User notifications in MongoDB ``notifications``: one method per query.

One unread notification per (recipient, conversation, kind) collects a burst: a new message
raises its ``count`` instead of adding a document, and the preview and message id are those of
the burst's highest ``seq``, whatever order concurrent handlers apply the messages in. While
unread it carries ``openKey`` (``<recipient>:<conversation>:<kind>``), unique by a partial
index, so two workers cannot open two for the same key; marking it read removes the key, and the
next message opens a fresh one. Each document keeps the ids of the last events it absorbed, so
an event applied twice (a redelivery after a crash) raises the count once. One message's
notifications for all its recipients are written in one bulk write and read back in one query.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from servicekit.mongo import Document, MongoDatabase
from servicekit.page_cursors import parse_time_cursor, time_cursor

Kind = Literal["message", "mention"]
COLLECTION = "notifications"
REMEMBERED_EVENTS = 100
_INSERT_RACES = 3
_DUPLICATE_KEY = 11000


@dataclass(frozen=True, slots=True)
class Notification:
    id: uuid.UUID
    recipient_id: uuid.UUID
    kind: Kind
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    preview: str
    count: int
    read: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewMessage:
    recipient_id: uuid.UUID
    kind: Kind
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    seq: int
    preview: str
    event_id: uuid.UUID
    at: datetime


class BadCursorError(ValueError):
    """A cursor this store did not hand out."""


class NotificationStore:
    def __init__(self, database: MongoDatabase) -> None:
        self._notifications = database[COLLECTION]

    async def create_indexes(self) -> None:
        await self._notifications.create_index(
            "openKey", unique=True, partialFilterExpression={"openKey": {"$exists": True}}
        )
        await self._notifications.create_index(
            [("recipientId", ASCENDING), ("updatedAt", DESCENDING), ("_id", DESCENDING)]
        )
        await self._notifications.create_index("eventIds")
        await self._notifications.create_index("messageId")

    async def record_all(self, event_id: uuid.UUID, news: list[NewMessage]) -> list[Notification]:
        """``record`` for every recipient of one event (``news`` all carry ``event_id``, one per
        recipient and kind): one bulk write, one read back, in the order of ``news``."""
        if not news:
            return []
        event = str(event_id)
        try:
            await self._notifications.bulk_write(
                [
                    write
                    for new in news
                    for write in (UpdateOne(*_absorb(new), upsert=True), UpdateOne(*_newest(new)))
                ],
                ordered=False,
            )
        except BulkWriteError as error:
            # A duplicate key is a repeat or a race with another worker; the read back tells.
            others = [e for e in error.details["writeErrors"] if e["code"] != _DUPLICATE_KEY]
            if others:
                raise
        found = self._notifications.find(
            {"eventIds": event, "recipientId": {"$in": [str(n.recipient_id) for n in news]}}
        )
        by_key = {
            (document["recipientId"], document["conversationId"], document["kind"]): document
            async for document in found
        }
        results = []
        for new in news:
            document = by_key.get((str(new.recipient_id), str(new.conversation_id), new.kind))
            # Absent: another worker opened this notification between our lookup and insert.
            results.append(_notification(document) if document else await self.record(new))
        return results

    async def record(self, new: NewMessage) -> Notification:
        """Add ``new`` to the recipient's unread notification of its kind in its conversation,
        opening one if there is none; applying the same event again changes nothing."""
        key = _open_key(new)
        event = str(new.event_id)
        for _ in range(_INSERT_RACES):
            try:
                document = await self._notifications.find_one_and_update(
                    *_absorb(new), upsert=True, return_document=ReturnDocument.AFTER
                )
            except DuplicateKeyError:
                # Either this event is in the open notification already (a repeat), or another
                # worker opened it between our lookup and insert: then the update applies.
                applied = await self._notifications.find_one({"openKey": key, "eventIds": event})
                if applied is not None:
                    return _notification(applied)
                continue
            newest = await self._notifications.find_one_and_update(
                *_newest(new), return_document=ReturnDocument.AFTER
            )
            return _notification(newest or document)
        raise RuntimeError(f"notification {key} kept racing")

    async def revise_preview(self, message_id: uuid.UUID, preview: str) -> int:
        """Show ``preview`` on every notification that shows ``message_id`` (it was edited or
        deleted); how many changed."""
        result = await self._notifications.update_many(
            {"messageId": str(message_id), "preview": {"$ne": preview}},
            {"$set": {"preview": preview}},
        )
        return result.modified_count

    async def forget_recipient(self, recipient_id: uuid.UUID) -> int:
        """Delete every notification of a deleted account; how many."""
        result = await self._notifications.delete_many({"recipientId": str(recipient_id)})
        return result.deleted_count

    async def page(
        self, recipient_id: uuid.UUID, *, unread_only: bool, limit: int, cursor: str | None
    ) -> tuple[list[Notification], str | None]:
        """Newest first; ``cursor`` continues after the last one of the previous page."""
        query: dict[str, Any] = {"recipientId": str(recipient_id)}
        if unread_only:
            query["read"] = False
        if cursor is not None:
            at, last_id = _decode_cursor(cursor)
            query["$or"] = [
                {"updatedAt": {"$lt": at}},
                {"updatedAt": at, "_id": {"$lt": last_id}},
            ]
        found = (
            self._notifications.find(query)
            .sort([("updatedAt", DESCENDING), ("_id", DESCENDING)])
            .limit(limit + 1)
        )
        documents = [document async for document in found]
        items = [_notification(document) for document in documents[:limit]]
        more = len(documents) > limit
        return items, time_cursor(items[-1].updated_at, items[-1].id) if more and items else None

    async def unread_count(self, recipient_id: uuid.UUID) -> int:
        return await self._notifications.count_documents(
            {"recipientId": str(recipient_id), "read": False}
        )

    async def mark_read(
        self, recipient_id: uuid.UUID, ids: list[uuid.UUID] | None, at: datetime
    ) -> int:
        """Mark the recipient's notifications read (``ids``, or all when None); how many were
        unread. Others' ids are simply not matched."""
        query: dict[str, Any] = {"recipientId": str(recipient_id), "read": False}
        if ids is not None:
            query["_id"] = {"$in": [str(i) for i in ids]}
        result = await self._notifications.update_many(
            query, {"$set": {"read": True, "readAt": at}, "$unset": {"openKey": ""}}
        )
        return result.modified_count


def _open_key(new: NewMessage) -> str:
    return f"{new.recipient_id}:{new.conversation_id}:{new.kind}"


def _absorb(new: NewMessage) -> tuple[dict[str, Any], dict[str, Any]]:
    """(filter, update) adding ``new`` to its open notification unless it holds the event; a
    notification it opens shows ``new``, one it joins keeps showing its newest message."""
    event = str(new.event_id)
    return (
        {"openKey": _open_key(new), "eventIds": {"$ne": event}},
        {
            "$inc": {"count": 1},
            "$max": {"updatedAt": new.at},
            "$push": {"eventIds": {"$each": [event], "$slice": -REMEMBERED_EVENTS}},
            "$setOnInsert": {
                "_id": str(uuid.uuid4()),
                "recipientId": str(new.recipient_id),
                "kind": new.kind,
                "conversationId": str(new.conversation_id),
                "read": False,
                "createdAt": new.at,
                **_shown(new),
            },
        },
    )


def _newest(new: NewMessage) -> tuple[dict[str, Any], dict[str, Any]]:
    """(filter, update) showing ``new`` on its open notification if it is newer than what it
    shows: a no-op when the notification does not exist yet (``_absorb`` opens it with
    ``new``), so the two may run in either order."""
    return (
        {"openKey": _open_key(new), "seq": {"$lt": new.seq}},
        {"$set": _shown(new)},
    )


def _shown(new: NewMessage) -> dict[str, Any]:
    return {"messageId": str(new.message_id), "seq": new.seq, "preview": new.preview}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _notification(document: Document | None) -> Notification:
    assert document is not None  # an upsert returning the document after always has one
    return Notification(
        id=uuid.UUID(document["_id"]),
        recipient_id=uuid.UUID(document["recipientId"]),
        kind=document["kind"],
        conversation_id=uuid.UUID(document["conversationId"]),
        message_id=uuid.UUID(document["messageId"]),
        preview=document["preview"],
        count=document["count"],
        read=document["read"],
        created_at=_utc(document["createdAt"]),
        updated_at=_utc(document["updatedAt"]),
    )


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, last_id = parse_time_cursor(cursor)
    except ValueError:
        raise BadCursorError(cursor) from None
    return at, str(last_id)
