"""What may not hide in a name or a message: pure rules."""

from __future__ import annotations

import pytest

from servicekit.display_text import message_problem, name_problem, normalized_name


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
