"""Which image type a file really is, decided by its first bytes (its magic number).

The filename and the declared Content-Type are the client's claims; these signatures are what
decoders look at. Chat refuses an upload whose bytes match none of them, and the media worker
checks that the decoder agrees with the type decided here.
"""

from __future__ import annotations

from typing import Final

SNIFF_BYTES: Final = 12
"""How many leading bytes :func:`sniff_image_type` needs."""

JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
GIF: Final = "image/gif"
WEBP: Final = "image/webp"
ALLOWED_IMAGE_TYPES: Final = frozenset({JPEG, PNG, GIF, WEBP})


def sniff_image_type(head: bytes) -> str | None:
    """The content type the leading bytes announce, or ``None`` for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if len(head) >= SNIFF_BYTES and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None
