"""The envelope ids this instance emitted lately, so that an event published twice reaches its
sockets once.

Publishing is at least once: the outbox relay publishes a batch, then marks it sent in
Postgres; if Postgres dies between the two, the relay publishes the same envelopes (same ids)
again once it is back. Consumers that write keep their idempotency in their stores; the gateway
keeps nothing durable, so it remembers the last ids it emitted. A replay comes within seconds of
the original, long before the id leaves this window.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

CAPACITY = 32768  # a few MB of ids; at 1,000 events a second, the last half minute


class RecentEvents:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[UUID, None] = OrderedDict()

    def first_time(self, event_id: UUID) -> bool:
        """Whether ``event_id`` is new (it is remembered from now on)."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True
