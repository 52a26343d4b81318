"""Image files for media tests: good ones, one with GPS in its EXIF, and the bad kinds a media
pipeline must refuse (disguised, truncated, garbage after the signature, decompression bombs)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

EXIF_GPS_IFD = 0x8825
EXIF_ORIENTATION = 0x0112
# The start of a Windows executable ("MZ", then the DOS stub), whatever its filename says.
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def png(width: int = 640, height: int = 480, color: tuple[int, ...] = (30, 120, 200)) -> bytes:
    """A flat image: RGB, or RGBA when ``color`` has four channels."""
    out = io.BytesIO()
    Image.new("RGBA" if len(color) == 4 else "RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def noisy_png(width: int = 400, height: int = 300) -> bytes:
    """Barely compressible, so a truncated copy is surely missing pixel data."""
    out = io.BytesIO()
    Image.effect_noise((width, height), 64).convert("RGB").save(out, format="PNG")
    return out.getvalue()


def jpeg_with_gps(width: int = 320, height: int = 200) -> bytes:
    """A JPEG whose EXIF says where it was taken (Berlin) and with which camera."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[EXIF_GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def truncated_png() -> bytes:
    whole = noisy_png()
    return whole[: len(whole) // 2]


def garbage_after_signature() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"not really a png " * 64


def decompression_bomb_png(side: int = 20_000) -> bytes:
    """A few dozen KB on disk that decode to ``side * side`` pixels."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG")
    return out.getvalue()


def gps_of(data: bytes) -> dict[Any, Any]:
    """The GPS tags in an image's EXIF (empty when there are none)."""
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif().get_ifd(EXIF_GPS_IFD))


def decoded_size(data: bytes) -> tuple[int, int]:
    """Width and height after fully decoding (raises on a truncated or corrupt file)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def format_of(data: bytes) -> str | None:
    with Image.open(io.BytesIO(data)) as image:
        return image.format
