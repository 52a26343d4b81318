"""The URL table of the notifications API; the OpenAPI document is generated from it."""

from __future__ import annotations

from servicekit.openapi import Endpoint, uuid_segment
from workers import device_api, notifications_api
from workers.device_api import DeviceList, DeviceView, PushConfig, RegisterDeviceBody
from workers.notifications_api import (
    MarkReadBody,
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
        request=MarkReadBody,
        responses={200: MarkReadResponse},
        errors=(400, 401, 413, 415, 422),
        tags=("notifications",),
    ),
    Endpoint(
        "GET",
        "/api/notifications/push",
        device_api.push_config,
        "The push platforms this server delivers to, and the Web Push public key",
        responses={200: PushConfig},
        errors=(401,),
        tags=("devices",),
    ),
    Endpoint(
        "POST",
        "/api/notifications/devices",
        device_api.register_device,
        "Register this device for pushes while its user is not looking (again: updated)",
        request=RegisterDeviceBody,
        responses={201: DeviceView},
        errors=(400, 401, 413, 415, 422),
        tags=("devices",),
        provides={"device_id": "$response.body#/id"},
    ),
    Endpoint(
        "GET",
        "/api/notifications/devices",
        device_api.list_devices,
        "The caller's push devices",
        responses={200: DeviceList},
        errors=(401,),
        tags=("devices",),
    ),
    Endpoint(
        "DELETE",
        "/api/notifications/devices/" + uuid_segment("device_id"),
        device_api.remove_device,
        "Stop pushing to one of the caller's devices",
        responses={204: None},
        errors=(401, 404),
        tags=("devices",),
    ),
)
