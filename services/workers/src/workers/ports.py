"""What the workers' device registrations need from the world, as protocols: MongoDB
(``DeviceStore``) and the Web Push adapter (``WebPushSender``) satisfy them in production; the
unit tests pass in-memory fakes."""

from __future__ import annotations

import uuid
from typing import Protocol, runtime_checkable

from workers.devices import Device, Platform


class Devices(Protocol):
    """Push devices by their address; registering an address again moves it to the caller."""

    async def register(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        platform: Platform,
        token: str,
        keys: dict[str, str],
        previews: bool,
    ) -> Device: ...

    async def of_user(self, user_id: uuid.UUID) -> list[Device]: ...

    async def remove(self, user_id: uuid.UUID, device_id: uuid.UUID) -> bool:
        """False unless the user had that device."""
        ...


@runtime_checkable
class WebPushEndpoints(Protocol):
    """The Web Push sender as registration sees it: its key, and which endpoints it pushes to."""

    public_key: str

    def allows(self, endpoint: str) -> bool: ...
