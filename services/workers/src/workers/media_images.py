"""What the media worker does to one uploaded image, with Pillow, as a pure function of bytes.

``inspect_and_clean`` decides whether the bytes are an image of the type they claim and, if so,
returns the image re-encoded without metadata (EXIF, GPS and XMP are dropped; the ICC colour
profile is kept, and the EXIF orientation is applied to the pixels first so nothing shows
sideways), its dimensions and a WebP thumbnail. Anything else is a :class:`MediaRejectedError`
with a reason a user can read: wrong type, truncated or corrupt data, too many pixels.

Pillow's decompression-bomb guard is set explicitly (``Image.MAX_IMAGE_PIXELS``), and the size is
also checked from the header before any pixel is decoded, so a small file announcing a huge image
is refused without allocating it. ``decode_cost`` tells, from the header too, how many bytes a
decode will hold at its peak, so the caller can budget memory by bytes rather than by pixels.
The functions block: callers run them in a thread.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageOps, UnidentifiedImageError

from servicekit.image_types import GIF, JPEG, PNG, WEBP, sniff_image_type

# At its peak a decode holds the decoded pixels about three times over: the frames themselves,
# the upright copy that is re-encoded, and the converted copy the thumbnail is made from
# (measured: two 40-megapixel RGBA PNGs took a worker from 82 to 980 MiB).
PEAK_COPIES: Final = 3
BYTES_PER_PIXEL: Final = 4  # RGBA, what every mode is worked in at worst
THUMBNAIL_FORMAT: Final = "WEBP"
THUMBNAIL_CONTENT_TYPE: Final = "image/webp"
_PILLOW_FORMATS: Final = {JPEG: "JPEG", PNG: "PNG", GIF: "GIF", WEBP: "WEBP"}
_MAX_FRAMES: Final = 1000


class MediaRejectedError(Exception):
    """The upload is not an acceptable image; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_pixels: int
    """Width x height x frames above this is a decompression bomb."""
    thumbnail_size: int
    """The thumbnail fits in a square of this many pixels."""


@dataclass(frozen=True, slots=True)
class CleanImage:
    content_type: str
    width: int
    height: int
    body: bytes
    """The image re-encoded without metadata."""
    thumbnail: bytes


def guard_against_bombs(limits: ImageLimits) -> None:
    """Pillow's own guard, set once per process: its pixel limit, and its warning (the zone
    between the limit and twice the limit) turned into an error. Process-wide state, so it is
    set at start rather than around each call (``warnings.catch_warnings`` is not thread-safe).
    """
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def decode_cost(data: bytes) -> int:
    """The memory, in bytes, decoding and cleaning ``data`` would hold at its peak, from the
    header alone (no pixel is decoded); 0 when the header does not read (``inspect_and_clean``
    then says why)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            frames = getattr(image, "n_frames", 1)
    except Exception:
        return 0
    return width * height * max(1, frames) * BYTES_PER_PIXEL * PEAK_COPIES


def inspect_and_clean(data: bytes, declared_type: str, limits: ImageLimits) -> CleanImage:
    sniffed = sniff_image_type(data[:16])
    if sniffed is None:
        raise MediaRejectedError("not an image of an allowed type")
    if sniffed != declared_type:
        raise MediaRejectedError(f"content is {sniffed}, not the recorded {declared_type}")
    try:
        return _decode_and_encode(data, sniffed, limits)
    except MediaRejectedError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRejectedError(
            f"too many pixels (a decompression bomb): the limit is {limits.max_pixels}"
        ) from None
    except UnidentifiedImageError:
        raise MediaRejectedError("the image data is not readable") from None
    except Exception as error:
        # Pillow reports truncated and corrupt data as OSError, SyntaxError, ValueError,
        # EOFError and more, by format; whatever it raises, the file is what is wrong.
        raise MediaRejectedError(f"corrupt or truncated image: {error}"[:400]) from None


def _decode_and_encode(data: bytes, content_type: str, limits: ImageLimits) -> CleanImage:
    pillow_format = _PILLOW_FORMATS[content_type]
    with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
        width, height = image.size
        frames = getattr(image, "n_frames", 1)
        if width < 1 or height < 1:
            raise MediaRejectedError("the image has no pixels")
        if frames > _MAX_FRAMES or width * height * frames > limits.max_pixels:
            raise MediaRejectedError(
                f"too many pixels (a decompression bomb): {width}x{height}x{frames} frames, "
                f"the limit is {limits.max_pixels}"
            )
        # Decode every frame now: truncated or corrupt data fails here, not in a client.
        for frame in range(frames):
            image.seek(frame)
            image.load()
        image.seek(0)
        body = _without_metadata(image, pillow_format, frames)
        thumbnail = _thumbnail(image, limits.thumbnail_size)
    if frames == 1:
        # After exif_transpose a rotated photo's width and height swap.
        with Image.open(io.BytesIO(body)) as cleaned:
            width, height = cleaned.size
    return CleanImage(content_type, width, height, body, thumbnail)


def _without_metadata(image: Image.Image, pillow_format: str, frames: int) -> bytes:
    out = io.BytesIO()
    icc = image.info.get("icc_profile")
    options: dict[str, object] = {"icc_profile": icc} if icc else {}
    if frames > 1:
        # Animated GIF/WebP/APNG: re-encode every frame; no exif is passed, so none is written.
        image.save(out, format=pillow_format, save_all=True, **options)
        return out.getvalue()
    upright = ImageOps.exif_transpose(image)
    if pillow_format == "JPEG":
        options.update(quality=90, optimize=True)
        if upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
    if pillow_format == "WEBP":
        options.update(quality=90)
    upright.save(out, format=pillow_format, **options)
    return out.getvalue()


def _thumbnail(image: Image.Image, size: int) -> bytes:
    image.seek(0)
    first = ImageOps.exif_transpose(image)
    if first.mode not in ("RGB", "RGBA"):
        first = first.convert("RGBA" if _has_alpha(first) else "RGB")
    first.thumbnail((size, size))
    out = io.BytesIO()
    first.save(out, format=THUMBNAIL_FORMAT, quality=80)
    return out.getvalue()


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("LA", "PA", "RGBA") or "transparency" in image.info
