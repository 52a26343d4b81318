"""Cursors of paged lists: where the next page starts, as plain text with an exact pattern.

A cursor names the last item of the page before by its sort key and id. Every string the
pattern admits is a cursor (it may point anywhere, and then gives the page after that point),
so the API documents can state the rule exactly, query decoding enforces it, and parsing what
the pattern admits cannot fail. Clients treat cursors as opaque all the same.

- A time cursor: ``<microseconds since the Unix epoch>~<id>``, for lists newest first.
- A name cursor: ``<lower-case name>~<id>``, for lists in name order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final
from uuid import UUID

from msgspec import Meta

UUID_PATTERN: Final = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_SEPARATOR: Final = "~"

TimeCursor = Annotated[
    str,
    Meta(
        pattern=f"^[0-9]{{1,16}}{_SEPARATOR}{UUID_PATTERN}$",
        description="`nextCursor` of the page before",
    ),
]
NameCursor = Annotated[
    str,
    Meta(
        pattern=f"^[a-z0-9_.-]{{1,64}}{_SEPARATOR}{UUID_PATTERN}$",
        description="`nextCursor` of the page before",
    ),
]


def time_cursor(at: datetime, item_id: UUID | str) -> str:
    return f"{(at - _EPOCH) // _MICROSECOND}{_SEPARATOR}{item_id}"


def parse_time_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The time and id of a ``TimeCursor``; ``ValueError`` for a string it does not admit."""
    micros, _, item_id = cursor.partition(_SEPARATOR)
    if not (micros.isascii() and micros.isdigit()) or len(micros) > 16:
        raise ValueError(f"not a time cursor: {cursor!r}")
    return _EPOCH + int(micros) * _MICROSECOND, UUID(item_id)


def name_cursor(name: str, item_id: UUID | str) -> str:
    return f"{name.lower()}{_SEPARATOR}{item_id}"


def parse_name_cursor(cursor: str) -> tuple[str, UUID]:
    """The name and id of a ``NameCursor``; ``ValueError`` for a string without an id."""
    name, _, item_id = cursor.rpartition(_SEPARATOR)
    if not name:
        raise ValueError(f"not a name cursor: {cursor!r}")
    return name, UUID(item_id)
