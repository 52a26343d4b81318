"""The gateway's events onto the bus: each in an envelope of the gateway's, confirmed."""

from __future__ import annotations

from contracts import make_envelope
from gateway.config import SERVICE
from gateway.ports import BusEvent
from servicekit.amqp.publisher import ConfirmedPublisher


class ConfirmedEventBus:
    def __init__(self, publisher: ConfirmedPublisher) -> None:
        self._publisher = publisher

    async def publish(self, event: BusEvent) -> None:
        await self._publisher.publish_envelopes([make_envelope(event, producer=SERVICE)])
