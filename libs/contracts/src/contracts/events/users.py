"""Events about user accounts (auth publishes; chat keeps its user directory from them) and
between users (chat publishes who blocked whom; the gateways keep presence apart)."""

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


class UserAvatarChanged(Event, frozen=True, kw_only=True):
    """The user chose a processed image of theirs as avatar (`null`: none): anyone signed in
    may then fetch it, as they may see the profile."""

    event_type = names.USER_AVATAR_CHANGED

    user_id: UUID
    avatar_media_id: UUID | None
    changed_at: UtcDatetime


class UserDeleted(Event, frozen=True, kw_only=True):
    """The account was deleted: its sessions are revoked, its tokens refused, and every service
    forgets what it kept of the user (chat shows their past messages as a deleted account)."""

    event_type = names.USER_DELETED

    user_id: UUID
    deleted_at: UtcDatetime


class ContactBlocked(Event, frozen=True, kw_only=True):
    """`blocker_id` blocked `blocked_id`: neither sees the other's presence, and neither can
    open or write a direct conversation with the other, until the block is lifted."""

    event_type = names.CONTACT_BLOCKED

    blocker_id: UUID
    blocked_id: UUID
    at: UtcDatetime


class ContactUnblocked(Event, frozen=True, kw_only=True):
    """`blocker_id` lifted their block of `blocked_id`."""

    event_type = names.CONTACT_UNBLOCKED

    blocker_id: UUID
    blocked_id: UUID
    at: UtcDatetime
