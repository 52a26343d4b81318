"""What may not hide in a name or a message: pure rules."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicekit.display_text import (
    message_pattern,
    message_problem,
    name_pattern,
    name_problem,
    normalized_name,
)


def test_names_are_nfkc_normalised_and_trimmed() -> None:
    assert normalized_name("  \uff26\uff55\uff4c\uff4c \ufb01eld ") == "Full field"
    assert normalized_name("Zoë") == "Zoë"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("evil\u202etxt.exe", "reorder"),
        ("a\u2066b\u2069", "reorder"),
        ("Ali\u200bce", "invisible"),
        ("Bob\u00ad", "invisible"),
        ("\u3164", "invisible"),
        ("tab\there", "control"),
        ("nul\x00", "control"),
    ],
)
def test_names_refuse_what_only_deceives(name: str, reason: str) -> None:
    problem = name_problem(name)
    assert problem is not None
    assert reason in problem


def test_names_in_any_script_are_fine() -> None:
    for name in ("Алиса", "محمد", "李雷", "Zoë", "O'Brien-Smith"):
        assert name_problem(normalized_name(name)) is None, name


def test_messages_keep_direction_marks_and_line_breaks_but_must_show_something() -> None:
    assert message_problem("مرحبا\u200f hello\nsecond line\t!") is None
    assert message_problem("\u200b\u200b") == "must show at least one visible character"
    assert message_problem(" \u2060\ufeff ") == "must show at least one visible character"
    assert message_problem("bell\x07") == "must not contain control characters"


# The documented patterns state exactly the rules the checks apply.
_SAMPLES = [
    "Ada",
    " ",
    "",
    "\u200b",
    "a\u200b",
    "\x00a",
    "a\tb",
    "line\nbreak",
    "\u202eabc",
    "\ufdfa",
    "\U0001f600",
    "\u3164",
    " \u3164 x",
    "\U000e0041",
    "\u00ad",
    "x\u0085",
    "\u2028",
    "Zoë",
]


@pytest.mark.parametrize("text", _SAMPLES)
def test_the_name_pattern_admits_exactly_what_name_problem_does(text: str) -> None:
    assert (re.fullmatch(name_pattern(), text) is not None) == (name_problem(text) is None)


@pytest.mark.parametrize("text", _SAMPLES)
def test_the_message_pattern_admits_exactly_what_message_problem_does(text: str) -> None:
    assert (re.fullmatch(message_pattern(), text) is not None) == (message_problem(text) is None)


@given(st.text(max_size=12))
@settings(max_examples=400)
def test_the_patterns_agree_with_the_checks_on_any_text(text: str) -> None:
    assert (re.fullmatch(name_pattern(), text) is not None) == (name_problem(text) is None)
    assert (re.fullmatch(message_pattern(), text) is not None) == (message_problem(text) is None)
