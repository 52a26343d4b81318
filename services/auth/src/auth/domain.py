"""Accounts and sessions as values, and the rules a registration or a profile must meet."""

from __future__ import annotations

import hashlib
import re
import secrets
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from uuid import UUID

from auth.passwords import MAX_PASSWORD_BYTES
from servicekit.display_text import name_problem
from servicekit.refusals import FieldError

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")
# Deliberately loose: one @, a dot in the domain, no white space and no control character (nor
# NUL, which Postgres text cannot hold). Deliverability is the mailer's job. The characters are
# spelled out rather than ``\s``, which means other things in Python and in the ECMA patterns of
# JSON Schema, so the API document states this very rule. Both are matched with ``fullmatch``:
# ``$`` alone would let a trailing newline through.
_EMAIL_CHAR = r"[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
EMAIL = re.compile(rf"{_EMAIL_CHAR}{{1,64}}@{_EMAIL_CHAR}+\.{_EMAIL_CHAR}+")
MAX_EMAIL = 254
MIN_PASSWORD_CHARS = 8
MAX_DISPLAY_NAME = 64
MAX_BIO = 500
MAX_STATUS_TEXT = 140


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
    username: str
    display_name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewSession:
    id: UUID
    refresh_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshTokenState:
    session_id: UUID
    user_id: UUID
    rotated: bool
    token_expires_at: datetime
    session_revoked: bool
    session_expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: UUID
    user_agent: str | None
    client_ip: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime


class AlreadyTaken(Exception):
    """An email or username another account holds (``field`` names which)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already taken")
        self.field = field


def email_errors(email: str) -> list[FieldError]:
    if len(email) > MAX_EMAIL or not EMAIL.fullmatch(email):
        return [FieldError("email", "must be an email address")]
    return []


def username_errors(username: str) -> list[FieldError]:
    if not USERNAME.fullmatch(username):
        return [
            FieldError("username", "must be 3 to 32 letters, digits, '_', '.' or '-'"),
        ]
    return []


def password_errors(password: str) -> list[FieldError]:
    if len(password) < MIN_PASSWORD_CHARS:
        return [FieldError("password", f"must be at least {MIN_PASSWORD_CHARS} characters")]
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return [FieldError("password", f"must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8")]
    return []


def display_name_errors(display_name: str) -> list[FieldError]:
    """Of a name already through ``servicekit.display_text.normalized_name``."""
    if not display_name or len(display_name) > MAX_DISPLAY_NAME:
        return [FieldError("displayName", f"must be 1 to {MAX_DISPLAY_NAME} characters")]
    if (problem := name_problem(display_name)) is not None:  # NUL included: a control
        return [FieldError("displayName", problem)]
    return []


@cache
def known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_errors(timezone: str) -> list[FieldError]:
    if timezone not in known_timezones():
        return [FieldError("timezone", "must be an IANA time zone such as Europe/Paris")]
    return []


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    """Tokens are stored hashed: a copy of the table does not let anyone refresh."""
    return hashlib.sha256(token.encode()).digest()
