"""HTTP of the media API: decode the multipart upload, call the media service, encode answers.

The upload is read as a stream from the multipart body, so the app-wide ``client_max_size``
(``MAX_BODY_BYTES``, which bounds every JSON body) does not apply to it: this route has its own
limit, ``MEDIA_MAX_BYTES``, enforced while the bytes arrive. A declared Content-Length beyond
that limit (plus the multipart framing) is refused before one byte is read.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from chat.handlers import USER_LIMITS
from chat.media.api import MediaResponse
from chat.media.service import NO_MEDIA, Download, MediaService
from servicekit.http_app import json_response
from servicekit.problems import FieldError, ProblemError, validation_problem
from servicekit.request_body import path_id
from servicekit.tokens import authenticate

MEDIA_SERVICE = web.AppKey("media_service", MediaService)
FILE_FIELD = "file"
ONE_PART = "send one part, a file named 'file', and nothing else"
CHUNK_BYTES = 64 * 1024
# Boundaries, part headers and a filename: generous, so an allowed file is never refused for it.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def _media_id(request: web.Request) -> uuid.UUID:
    return path_id(request, "media_id", NO_MEDIA)


async def _chunks(part: BodyPartReader, reader: MultipartReader) -> AsyncIterator[bytes]:
    """The file's bytes; past them, a part more is refused before anything is kept."""
    while chunk := await part.read_chunk(CHUNK_BYTES):
        yield chunk
    try:
        extra = await reader.next()
    except (ValueError, BadHttpMessage) as error:
        raise _malformed(error) from None
    if extra is not None:
        raise validation_problem([FieldError(FILE_FIELD, ONE_PART)])


def _malformed(error: Exception) -> ProblemError:
    return ProblemError(400, f"Malformed multipart body: {error}", title="Malformed body")


async def _file_part(reader: MultipartReader) -> BodyPartReader | None:
    """The first part, if it is the file part."""
    part = await reader.next()
    if isinstance(part, BodyPartReader) and part.name == FILE_FIELD:
        return part
    return None


async def upload_media(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    await request.app[USER_LIMITS].upload(claims.user_id)
    service = request.app[MEDIA_SERVICE]
    declared = request.content_length
    if declared is not None and declared > service.max_bytes + MULTIPART_OVERHEAD_BYTES:
        raise ProblemError(
            413, f"Media is limited to {service.max_bytes} bytes", title="Content Too Large"
        )
    if request.content_type != "multipart/form-data":
        raise ProblemError(415, "Send the file as multipart/form-data")
    try:
        reader = await request.multipart()
        part = await _file_part(reader)
    except (ValueError, BadHttpMessage) as error:  # no boundary, or unreadable framing or headers
        raise _malformed(error) from None
    if part is None or part.filename is None:
        raise validation_problem([FieldError(FILE_FIELD, ONE_PART)])
    view = await service.upload(claims.user_id, part.filename, _chunks(part, reader))
    return json_response(MediaResponse(media=view), status=202)


async def get_media(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    view = await request.app[MEDIA_SERVICE].media(claims.user_id, _media_id(request))
    return json_response(MediaResponse(media=view))


async def get_media_content(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    download = await request.app[MEDIA_SERVICE].content(claims.user_id, _media_id(request))
    return _bytes(download)


async def get_media_thumbnail(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    download = await request.app[MEDIA_SERVICE].thumbnail(claims.user_id, _media_id(request))
    return _bytes(download)


def _bytes(download: Download) -> web.Response:
    return web.Response(
        body=download.body,
        content_type=download.content_type,
        headers={
            # The type is the one the worker verified; browsers must not second-guess it.
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "inline",
            # Only for the caller: access depends on who asks.
            "Cache-Control": "private, max-age=3600",
        },
    )
