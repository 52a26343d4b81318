"""Why a use case refuses: the services' domain errors, with no HTTP in them.

A service raises one of these; the HTTP edge (``servicekit.http_app``'s problem middleware)
answers it as an RFC 9457 problem with the status its kind maps to, and a queue consumer
answers it in its own terms (chat's ``message.refused``). ``FieldError`` names what is wrong
with which field, on either side.
"""

from __future__ import annotations

import msgspec


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class Refusal(Exception):
    """Base of every refusal: ``detail`` for the client, ``title`` when the kind's own
    (``Conflict``, ``Not Found``...) says too little."""

    def __init__(
        self, detail: str, *, title: str | None = None, errors: list[FieldError] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.title = title
        self.errors = errors


class InvalidInput(Refusal):
    """The input breaks a rule (422); ``errors`` names each field."""

    def __init__(self, errors: list[FieldError], detail: str = "The request is invalid") -> None:
        super().__init__(detail, title="Validation failed", errors=errors)


class NotAuthenticated(Refusal):
    """The caller is not who they must be: bad credentials, a dead session or account (401)."""


class Forbidden(Refusal):
    """The caller may see this but not do that (403)."""


class NotFound(Refusal):
    """There is no such thing, or not one the caller may see (404)."""


class Conflict(Refusal):
    """The state does not allow it: taken, already done, of the wrong kind (409)."""


class TooLarge(Refusal):
    """What was sent is bigger than allowed (413)."""


class UnsupportedType(Refusal):
    """What was sent is not of a kind accepted here, judged by its content (415)."""


class TooMany(Refusal):
    """A limit was reached; retry after ``retry_after_seconds`` (429)."""

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)


class Unavailable(Refusal):
    """Something the use case needs does not answer; retry later (503)."""

    def __init__(self, detail: str, retry_after_seconds: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)
