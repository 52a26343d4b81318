"""The URL table of the notifications API; the OpenAPI document is generated from it."""

from __future__ import annotations

from servicekit.openapi import Endpoint
from workers import notifications_api
from workers.notifications_api import (
    MarkReadRequest,
    MarkReadResponse,
    NotificationPage,
    NotificationsQuery,
)

OPENAPI_PATH = "/api/notifications/openapi.json"

ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/notifications",
        notifications_api.list_notifications,
        "The caller's notifications, newest first (unread=true for unread only)",
        query=NotificationsQuery,
        responses={200: NotificationPage},
        errors=(401, 422),
        tags=("notifications",),
    ),
    Endpoint(
        "POST",
        "/api/notifications/read",
        notifications_api.mark_read,
        "Mark the caller's notifications read: some by id, or all",
        request=MarkReadRequest,
        responses={200: MarkReadResponse},
        errors=(400, 401, 413, 415, 422),
        tags=("notifications",),
    ),
)
