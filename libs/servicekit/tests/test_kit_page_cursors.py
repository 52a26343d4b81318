"""Page cursors: what a cursor names comes back out of it, and the pattern is the whole rule."""

import re
import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from servicekit.page_cursors import (
    NameCursor,
    TimeCursor,
    name_cursor,
    parse_name_cursor,
    parse_time_cursor,
    time_cursor,
)

ITEM = uuid.UUID("f7564145-0f1d-4196-8ef5-768f7c8b0e7c")


def test_a_time_cursor_gives_back_its_time_to_the_microsecond_and_its_id() -> None:
    at = datetime(2026, 12, 7, 14, 3, 5, 123456, tzinfo=UTC)
    assert parse_time_cursor(time_cursor(at, ITEM)) == (at, ITEM)


def test_a_name_cursor_gives_back_the_lower_case_name_and_its_id() -> None:
    assert parse_name_cursor(name_cursor("Alice.B", ITEM)) == ("alice.b", ITEM)


@pytest.mark.parametrize(
    ("cursor_type", "cursor"),
    [
        (TimeCursor, time_cursor(datetime(2026, 1, 1, tzinfo=UTC), ITEM)),
        (NameCursor, name_cursor("bob_99", ITEM)),
    ],
)
def test_what_the_api_hands_out_matches_the_documented_pattern(
    cursor_type: object, cursor: str
) -> None:
    pattern = msgspec.json.schema(cursor_type)["pattern"]
    assert re.fullmatch(pattern.strip("^$"), cursor)
    assert msgspec.convert(cursor, cursor_type) == cursor


@pytest.mark.parametrize(
    "cursor",
    ["", f"-1~{ITEM}", f"{'9' * 17}~{ITEM}", "12~not-a-uuid", f"\u0661\u0662~{ITEM}"],
)
def test_a_time_cursor_outside_the_pattern_is_refused_on_decoding(cursor: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(cursor, TimeCursor)


def test_every_time_cursor_the_pattern_admits_parses() -> None:
    for micros in ("0", "9" * 16):
        at, item = parse_time_cursor(f"{micros}~{ITEM}")
        assert item == ITEM
        assert at.tzinfo is UTC
