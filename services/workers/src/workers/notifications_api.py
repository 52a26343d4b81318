"""HTTP side of notifications: the caller's own, listed and marked read. No Mongo here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from aiohttp import web
from msgspec import Meta

from servicekit.http_app import json_response
from servicekit.page_cursors import TimeCursor
from servicekit.refusals import FieldError, InvalidInput
from servicekit.request_body import Body, Query, read_json, read_query
from servicekit.tokens import authenticate
from workers.notification_store import BadCursorError, Notification, NotificationStore

NOTIFICATION_STORE = web.AppKey("notification_store", NotificationStore)


class NotificationsQuery(Query):
    unread: bool = False
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    cursor: TimeCursor | None = None


class NotificationView(Body):
    id: UUID
    kind: Literal["message", "mention"]
    conversation_id: UUID
    message_id: UUID
    preview: str
    count: int
    read: bool
    created_at: datetime
    updated_at: datetime


class NotificationPage(Body):
    notifications: list[NotificationView]
    next_cursor: str | None
    unread_count: int


class MarkReadRequest(Body):
    ids: Annotated[list[UUID], Meta(min_length=1, max_length=100)] | None = None
    all: bool = False


MarkReadBody = Annotated[
    MarkReadRequest,
    Meta(
        extra_json_schema={
            "description": "Some notifications by id, or all of them: one of the two",
            "oneOf": [
                {
                    "required": ["ids"],
                    "properties": {"ids": {"type": "array"}, "all": {"const": False}},
                },
                {
                    "required": ["all"],
                    "properties": {"all": {"const": True}, "ids": {"type": "null"}},
                },
            ],
        }
    ),
]


class MarkReadResponse(Body):
    marked: int
    unread_count: int


def _view(notification: Notification) -> NotificationView:
    return NotificationView(
        id=notification.id,
        kind=notification.kind,
        conversation_id=notification.conversation_id,
        message_id=notification.message_id,
        preview=notification.preview,
        count=notification.count,
        read=notification.read,
        created_at=notification.created_at,
        updated_at=notification.updated_at,
    )


async def list_notifications(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    query = read_query(request.query, NotificationsQuery)
    store = request.app[NOTIFICATION_STORE]
    try:
        items, cursor = await store.page(
            claims.user_id, unread_only=query.unread, limit=query.limit, cursor=query.cursor
        )
    except BadCursorError:
        raise InvalidInput([FieldError("cursor", "not a cursor from this API")]) from None
    unread = await store.unread_count(claims.user_id)
    return json_response(
        NotificationPage(
            notifications=[_view(n) for n in items], next_cursor=cursor, unread_count=unread
        )
    )


async def mark_read(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    body = await read_json(request, MarkReadRequest)
    if (body.ids is None) == (not body.all):
        raise InvalidInput([FieldError("ids", "send ids, or all: true, not both")])
    store = request.app[NOTIFICATION_STORE]
    marked = await store.mark_read(claims.user_id, body.ids, datetime.now(UTC))
    unread = await store.unread_count(claims.user_id)
    return json_response(MarkReadResponse(marked=marked, unread_count=unread))
