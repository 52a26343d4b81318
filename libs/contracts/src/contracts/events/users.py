"""Events auth publishes about user accounts; chat keeps its user directory from them."""

from typing import Annotated
from uuid import UUID

from msgspec import Meta

from contracts import names
from contracts.wire import Event, UtcDatetime

Username = Annotated[str, Meta(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Email = Annotated[str, Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
DisplayName = Annotated[str, Meta(min_length=1, max_length=64)]


class UserRegistered(Event, frozen=True, kw_only=True):
    """A new account exists."""

    event_type = names.USER_REGISTERED

    user_id: UUID
    email: Email
    username: Username
    display_name: DisplayName
    created_at: UtcDatetime


class UserUpdated(Event, frozen=True, kw_only=True):
    """The public identity of an account changed."""

    event_type = names.USER_UPDATED

    user_id: UUID
    username: Username
    display_name: DisplayName
    updated_at: UtcDatetime
