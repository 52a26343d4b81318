"""The public JSON of the auth API: request and response bodies, camelCase on the wire.

Length bounds here only keep absurd input out; the precise rules (and the per-field error list)
are in ``domain``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from servicekit.request_body import Body

Text = Annotated[str, Meta(max_length=1024)]


class RegisterRequest(Body):
    email: Text
    username: Text
    password: Text
    display_name: Text | None = None


class LoginRequest(Body):
    password: Text
    email: Text | None = None
    username: Text | None = None


class RefreshRequest(Body):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=256)]


class DeleteAccountRequest(Body):
    """The password again: deleting an account cannot be undone."""

    password: Text


class ChangePasswordRequest(Body):
    current_password: Text
    new_password: Text


class SessionView(Body):
    """One signed-in device: a login and the refresh tokens that continue it."""

    id: UUID
    device: str | None
    """The User-Agent it signed in with."""
    ip_address: str | None
    created_at: datetime
    last_used_at: datetime
    """The last sign-in or refresh."""
    expires_at: datetime
    current: bool
    """Whether the token that asked belongs to this session."""


class SessionList(Body):
    sessions: list[SessionView]


class UpdateMeRequest(Body):
    display_name: Text


class UpdateProfileRequest(Body):
    """Fields left out stay as they are; ``null`` clears one."""

    bio: Text | UnsetType | None = UNSET
    avatar_media_id: UUID | UnsetType | None = UNSET
    status_text: Text | UnsetType | None = UNSET
    timezone: Annotated[str, Meta(max_length=64)] | UnsetType | None = UNSET


class SearchQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    q: Annotated[str, Meta(min_length=1, max_length=64)]
    limit: Annotated[int, Meta(ge=1, le=50)] = 20
    cursor: Annotated[str, Meta(max_length=256)] | None = None


class Profile(Body, omit_defaults=True):
    bio: str | None = None
    avatar_media_id: UUID | None = None
    status_text: str | None = None
    timezone: str | None = None


class UserView(Body):
    """The caller's own account."""

    id: UUID
    email: str
    username: str
    display_name: str
    created_at: datetime
    updated_at: datetime
    profile: Profile


class PublicUser(Body):
    """What anyone signed in may see of an account."""

    id: UUID
    username: str
    display_name: str
    created_at: datetime
    profile: Profile


class AuthResult(Body):
    user: UserView
    token: str
    expires_at: datetime
    refresh_token: str


class MeResponse(Body):
    user: UserView


class UserResponse(Body):
    user: PublicUser


class UserPage(Body):
    users: list[PublicUser]
    next_cursor: str | None


class ProfileResponse(Body):
    profile: Profile
