"""Hooks the e2e suite loads into ``schemathesis run`` (``SCHEMATHESIS_HOOKS``): how a fuzzed
request authenticates against the fleet behind ``E2E_PUBLIC_URL``, and how to write the two
string formats whose rule JSON Schema cannot state (their descriptions in the documents say it).

Every operation is called as one account registered for the run, except those that end the
caller's own sign-in or account (logout, password change, account deletion, revoking a
session): with the shared token, the first valid call would turn every later request into a
401. Each of those calls goes as a new throwaway account instead, so they are fuzzed like every
other operation. schemathesis' own checks (``ignored_auth``) still strip or spoil the header.
"""

from __future__ import annotations

import json
import os
import threading
import unicodedata
import urllib.request
import uuid
from typing import Any

import schemathesis
from hypothesis import strategies as st

PUBLIC_URL_ENV = "E2E_PUBLIC_URL"
MAX_PASSWORD_BYTES = 72
MAX_DISPLAY_NAME = 64
PASSWORD = "fuzz-pass-1234"

ENDS_THE_CALLERS_SIGN_IN = frozenset(
    {
        ("POST", "/api/auth/logout"),
        ("POST", "/api/auth/password"),
        ("DELETE", "/api/users/me"),
        ("DELETE", "/api/auth/sessions/{session_id}"),
    }
)


# `password`: 8 or more characters, at most 72 bytes in UTF-8 (4 bytes a character at most).
schemathesis.openapi.format(
    "password",
    st.text(min_size=8, max_size=MAX_PASSWORD_BYTES // 4)
    | st.text(st.characters(codec="ascii"), min_size=8, max_size=MAX_PASSWORD_BYTES),
)
# `display-name`: 1 to 64 characters after NFKC normalisation and trimming, one of them
# visible, none a control, format or invisible character (the Hangul fillers and the braille
# blank are letters and symbols that show nothing).
_SHOWS_NOTHING = "\u115f\u1160\u3164\uffa0\u2800"
_drawn = st.characters(categories=("L", "M", "N", "P", "S"), exclude_characters=_SHOWS_NOTHING)
schemathesis.openapi.format(
    "display-name",
    st.text(st.one_of(_drawn, st.just(" ")), min_size=1, max_size=MAX_DISPLAY_NAME)
    .map(lambda name: unicodedata.normalize("NFKC", name).strip()[:MAX_DISPLAY_NAME].strip())
    .filter(lambda name: any(not char.isspace() for char in name)),
)


def register_account(public_url: str, tag: str = "fuzz") -> dict[str, Any]:
    """A new account, registered through the API gateway: auth's 201 body."""
    name = f"{tag}{uuid.uuid4().hex[:12]}"
    body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    if not public_url.startswith(("http://", "https://")):
        raise ValueError(f"{PUBLIC_URL_ENV} must be an http(s) URL, not {public_url!r}")
    request = urllib.request.Request(  # noqa: S310 - an http(s) URL, checked above
        f"{public_url}/api/auth/register",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        registered: dict[str, Any] = json.load(response)
    return registered


@schemathesis.auth(refresh_interval=None)
class FleetAccounts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared: str | None = None

    def get(self, case: Any, context: Any) -> str:
        public_url = os.environ[PUBLIC_URL_ENV]
        if (case.operation.method.upper(), case.operation.path) in ENDS_THE_CALLERS_SIGN_IN:
            return str(register_account(public_url)["token"])
        with self._lock:
            if self._shared is None:
                self._shared = str(register_account(public_url)["token"])
            return self._shared

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
