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

from auth.domain import (
    EMAIL,
    MAX_BIO,
    MAX_DISPLAY_NAME,
    MAX_EMAIL,
    MAX_STATUS_TEXT,
    MIN_PASSWORD_CHARS,
    USERNAME,
    known_timezones,
)
from auth.passwords import MAX_PASSWORD_BYTES
from servicekit.display_text import name_pattern
from servicekit.page_cursors import NameCursor
from servicekit.request_body import Body

Text = Annotated[str, Meta(max_length=1024)]

# What the documents state of each field. ``domain`` applies the rules and lists every field
# that breaks one, so these bounds are in the schema only, not enforced by decoding. JSON Schema
# cannot count UTF-8 bytes, nor tell which characters are drawn: a password's and a display
# name's ``format`` and description say it instead.
Email = Annotated[
    str,
    Meta(
        extra_json_schema={"maxLength": MAX_EMAIL, "pattern": f"^{EMAIL.pattern}$"},
    ),
]
Username = Annotated[
    str,
    Meta(
        extra_json_schema={
            "pattern": f"^{USERNAME.pattern}$",
            "description": "3 to 32 letters, digits, '_', '.' or '-'; unique, ignoring case",
        },
    ),
]
NewPassword = Annotated[
    str,
    Meta(
        extra_json_schema={
            "format": "password",
            "minLength": MIN_PASSWORD_CHARS,
            "maxLength": MAX_PASSWORD_BYTES,
            "description": f"At least {MIN_PASSWORD_CHARS} characters and at most "
            f"{MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt's limit)",
        },
    ),
]
DisplayName = Annotated[
    str,
    Meta(
        extra_json_schema={
            "format": "display-name",
            "pattern": name_pattern(),
            "minLength": 1,
            "maxLength": MAX_DISPLAY_NAME,
            "description": f"1 to {MAX_DISPLAY_NAME} characters once NFKC-normalised and "
            "trimmed, at least one of them visible; no control, invisible or bidi-override "
            "characters",
        },
    ),
]


class RegisterRequest(Body):
    email: Email
    username: Username
    password: NewPassword
    display_name: DisplayName | None = None


class LoginRequest(Body):
    """Either ``email`` or ``username`` (not both), with the password."""

    password: Text
    email: Text | None = None
    username: Text | None = None


LoginBody = Annotated[
    LoginRequest,
    Meta(
        extra_json_schema={
            "oneOf": [
                {"required": ["email"], "properties": {"email": {"type": "string"}}},
                {"required": ["username"], "properties": {"username": {"type": "string"}}},
            ],
        }
    ),
]
"""What the login route documents: one of the two names, not both."""


class RefreshRequest(Body):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=256)]


class DeleteAccountRequest(Body):
    """The password again: deleting an account cannot be undone."""

    password: Text


class ChangePasswordRequest(Body):
    current_password: Text
    new_password: NewPassword


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
    display_name: DisplayName


class UpdateProfileRequest(Body):
    """Fields left out stay as they are; ``null`` clears one."""

    bio: Annotated[str, Meta(extra_json_schema={"maxLength": MAX_BIO})] | UnsetType | None = UNSET
    avatar_media_id: UUID | UnsetType | None = UNSET
    """A processed image the caller uploaded (``POST /api/media``)."""
    status_text: (
        Annotated[str, Meta(extra_json_schema={"maxLength": MAX_STATUS_TEXT})] | UnsetType | None
    ) = UNSET
    timezone: (
        Annotated[str, Meta(max_length=64, extra_json_schema={"enum": sorted(known_timezones())})]
        | UnsetType
        | None
    ) = UNSET


class SearchQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    q: Annotated[str, Meta(min_length=1, max_length=64)]
    limit: Annotated[int, Meta(ge=1, le=50)] = 20
    cursor: NameCursor | None = None


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
