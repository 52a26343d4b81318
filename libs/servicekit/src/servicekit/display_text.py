"""Text that people read as someone's name or a message: what may not hide in it.

Names (display names, conversation titles) are NFKC-normalised, so compatibility forms
(full-width letters, ligatures, superscripts) become the letters they look like, and refuse the
characters that only deceive a reader: control characters, the bidirectional embeddings,
overrides and isolates (which reorder what follows, so "exe.txt" can show as "txt.exe"), and the
invisible ones (zero-width spaces and joiners, word joiners, soft hyphens, fillers). Message
text keeps what people type (no normalisation; direction marks stay, right-to-left writers need
them) but refuses control characters and must show at least one visible character.

Look-alike letters of other scripts (a Cyrillic "a", U+0430, in a Latin name) are not refused: names
are written in every script. What identifies a user is their username, unique and ASCII.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import cache

# Embeddings and overrides (LRE, RLE, PDF, LRO, RLO) and isolates (LRI, RLI, FSI, PDI).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Shown as nothing: zero-width space/non-joiner/joiner, LRM/RLM, word joiner and invisible
# operators, BOM, soft hyphen, Mongolian vowel separator, Hangul fillers, braille blank.
_INVISIBLE = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e"
    "\u115f\u1160\u3164\uffa0\u2800"
)
_ALLOWED_CONTROLS_IN_MESSAGES = frozenset("\n\r\t")


def normalized_name(text: str) -> str:
    """A name as it is stored and compared: NFKC, without surrounding white space."""
    return unicodedata.normalize("NFKC", text).strip()


def name_problem(text: str) -> str | None:
    """Why ``text`` cannot be a name (after ``normalized_name``), or None."""
    for char in text:
        if unicodedata.category(char) == "Cc":
            return "must not contain control characters"
        if char in _BIDI_CONTROLS:
            return "must not contain characters that reorder the text (bidi overrides)"
        if char in _INVISIBLE:
            return "must not contain invisible characters"
    if not shows_something(text):
        return "must show at least one visible character"
    return None


def message_problem(text: str) -> str | None:
    """Why ``text`` cannot be a message's text, or None."""
    for char in text:
        if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS_IN_MESSAGES:
            return "must not contain control characters"
    if not shows_something(text):
        return "must show at least one visible character"
    return None


def shows_something(text: str) -> bool:
    """Whether any character of ``text`` is drawn: not white space, not a format character,
    not one of the invisible ones."""
    return any(
        not char.isspace()
        and char not in _INVISIBLE
        and unicodedata.category(char) not in ("Cf", "Cc", "Zs", "Zl", "Zp")
        for char in text
    )


def name_pattern() -> str:
    """A regular expression (JSON Schema ``pattern``) that admits what ``name_problem`` does:
    no control, bidi-control or invisible character, at least one drawn one."""
    return _pattern_of("name")


def message_pattern() -> str:
    """A regular expression that admits what ``message_problem`` does: no control character but
    tab and line breaks, at least one drawn character."""
    return _pattern_of("message")


@cache
def _pattern_of(kind: str) -> str:
    # Built from the same tables and Unicode categories the checks above read, so the documents
    # state the rule exactly. BMP characters are written \uXXXX; others as themselves.
    controls, undrawn = _unicode_classes()
    if kind == "name":
        refused = [*controls, *_BIDI_CONTROLS, *_INVISIBLE]
    else:
        refused = [char for char in controls if char not in _ALLOWED_CONTROLS_IN_MESSAGES]
    allowed = f"[^{_class_body(refused)}]*"
    return f"^{allowed}[^{_class_body(undrawn)}]{allowed}$"


@cache
def _unicode_classes() -> tuple[list[str], list[str]]:
    """(control characters, characters that draw nothing), from one pass over Unicode. Lone
    surrogates are left out: no valid JSON text holds one, and ECMA patterns cannot name them."""
    controls, undrawn = [], []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Cc":
            controls.append(char)
        if char.isspace() or char in _INVISIBLE or category in ("Cf", "Cc", "Zs", "Zl", "Zp"):
            undrawn.append(char)
    return controls, undrawn


def _class_body(chars: list[str]) -> str:
    codes = sorted({ord(char) for char in chars})
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "".join(
        _escaped(first) if first == last else f"{_escaped(first)}-{_escaped(last)}"
        for first, last in ranges
    )


def _escaped(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)
