"""Events the gateway publishes when a user's first socket connects or last one leaves."""

from uuid import UUID

from contracts import names
from contracts.wire import Event, UtcDatetime


class PresenceOnline(Event, frozen=True, kw_only=True):
    """The user has at least one connected socket."""

    event_type = names.PRESENCE_ONLINE

    user_id: UUID
    at: UtcDatetime


class PresenceOffline(Event, frozen=True, kw_only=True):
    """The user's last socket disconnected."""

    event_type = names.PRESENCE_OFFLINE

    user_id: UUID
    last_seen_at: UtcDatetime
