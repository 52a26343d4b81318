"""Events the gateway publishes when a user's first socket connects or last one leaves."""

from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import Meta

from contracts import names
from contracts.wire import Event, UtcDatetime

MAX_AUDIENCE = 10_000


class PresenceOnline(Event, frozen=True, kw_only=True):
    """The user has at least one connected socket."""

    event_type = names.PRESENCE_ONLINE

    user_id: UUID
    at: UtcDatetime
    conversation_ids: Annotated[list[UUID], Meta(max_length=MAX_AUDIENCE)]
    """Whose members are told: the conversations the user shares with them."""
    hidden_from: Annotated[list[UUID], Meta(max_length=MAX_AUDIENCE)] = msgspec.field(
        default_factory=list
    )
    """Members who are not told all the same: the user blocked them or they blocked the user."""


class PresenceOffline(Event, frozen=True, kw_only=True):
    """The user's last socket disconnected."""

    event_type = names.PRESENCE_OFFLINE

    user_id: UUID
    last_seen_at: UtcDatetime
    conversation_ids: Annotated[list[UUID], Meta(max_length=MAX_AUDIENCE)]
    hidden_from: Annotated[list[UUID], Meta(max_length=MAX_AUDIENCE)] = msgspec.field(
        default_factory=list
    )
