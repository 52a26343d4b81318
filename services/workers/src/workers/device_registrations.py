"""Registering push devices: what a client may register, checked before it is stored.

A platform is offered only when its credentials are configured. A Web Push subscription must
name an ``https`` endpoint on one of the push-service hosts (``WEB_PUSH_ALLOWED_HOSTS``) and
carry a P-256 key and a 16-byte secret; an FCM or APNs token must look like one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from urllib.parse import urlsplit

from servicekit.refusals import FieldError, InvalidInput, NotFound
from servicekit.tokens import AccessClaims
from workers.device_api import (
    APNS_TOKEN,
    AUTH_SECRET,
    FCM_TOKEN,
    P256DH,
    DeviceList,
    DeviceView,
    PushConfig,
    RegisterDeviceRequest,
)
from workers.devices import Device, Platform
from workers.ports import Devices, WebPushEndpoints
from workers.push_sender import PushSender


class DeviceRegistrations:
    def __init__(
        self,
        store: Devices,
        senders: Mapping[Platform, PushSender],
        *,
        allow_plain_http: bool = False,
    ) -> None:
        self._store = store
        self._senders = senders
        self._allow_plain_http = allow_plain_http

    def config(self) -> PushConfig:
        web = self._senders.get("webpush")
        return PushConfig(
            platforms=sorted(self._senders),
            web_push_public_key=web.public_key if isinstance(web, WebPushEndpoints) else None,
        )

    async def register(self, claims: AccessClaims, request: RegisterDeviceRequest) -> DeviceView:
        if request.platform not in self._senders:
            raise InvalidInput(
                [FieldError("platform", f"{request.platform} is not enabled on this server")]
            )
        token, keys = self._address(request)
        device = await self._store.register(
            user_id=claims.user_id,
            session_id=claims.session_id,
            platform=request.platform,
            token=token,
            keys=keys,
            previews=request.previews,
        )
        return _view(device, claims.session_id)

    async def devices(self, claims: AccessClaims) -> DeviceList:
        found = await self._store.of_user(claims.user_id)
        return DeviceList(devices=[_view(device, claims.session_id) for device in found])

    async def remove(self, claims: AccessClaims, device_id: uuid.UUID) -> None:
        if not await self._store.remove(claims.user_id, device_id):
            raise NotFound("No such device")

    def _address(self, request: RegisterDeviceRequest) -> tuple[str, dict[str, str]]:
        if request.platform != "webpush":
            pattern = APNS_TOKEN if request.platform == "apns" else FCM_TOKEN
            if request.token is None or not pattern.fullmatch(request.token):
                raise InvalidInput(
                    [FieldError("token", f"must be the {request.platform} device token")]
                )
            return request.token, {}
        subscription = request.subscription
        if subscription is None:
            raise InvalidInput(
                [FieldError("subscription", "a Web Push device needs its PushSubscription")]
            )
        try:
            scheme = urlsplit(subscription.endpoint).scheme
        except ValueError:  # not a URL at all ("https://[", an unclosed IPv6 host)
            scheme = ""
        schemes = ("https", "http") if self._allow_plain_http else ("https",)
        sender = self._senders["webpush"]
        if (
            scheme not in schemes
            or not isinstance(sender, WebPushEndpoints)
            or not sender.allows(subscription.endpoint)
        ):
            raise InvalidInput(
                [FieldError("subscription.endpoint", "must be a push service's https endpoint")]
            )
        errors = []
        if not P256DH.fullmatch(subscription.keys.p256dh):
            errors.append(FieldError("subscription.keys.p256dh", "must be a P-256 public key"))
        if not AUTH_SECRET.fullmatch(subscription.keys.auth):
            errors.append(FieldError("subscription.keys.auth", "must be a 16-byte secret"))
        if errors:
            raise InvalidInput(errors)
        keys = {"p256dh": subscription.keys.p256dh, "auth": subscription.keys.auth}
        return subscription.endpoint, keys


def _view(device: Device, current_session: uuid.UUID) -> DeviceView:
    web = device.platform == "webpush"
    return DeviceView(
        id=device.id,
        platform=device.platform,
        token=None if web else device.token,
        endpoint=device.token if web else None,
        previews=device.previews,
        created_at=device.created_at,
        current=device.session_id == current_session,
    )
