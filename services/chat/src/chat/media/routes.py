"""The URL table of the media API, part of chat's OpenAPI document."""

from __future__ import annotations

from chat.media import handlers
from chat.media.api import MediaResponse
from servicekit.image_types import ALLOWED_IMAGE_TYPES
from servicekit.openapi import Endpoint, uuid_segment

MEDIA = "/api/media/" + uuid_segment("media_id")

MEDIA_ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/media",
        handlers.upload_media,
        "Upload an image (multipart, one part named 'file'); it is pending until processed",
        responses={202: MediaResponse},
        errors=(400, 401, 403, 413, 415, 422, 429),
        tags=("media",),
        file_field=handlers.FILE_FIELD,
        file_types=tuple(sorted(ALLOWED_IMAGE_TYPES)),
        provides={"media_id": "$response.body#/media/id"},
    ),
    Endpoint(
        "GET",
        MEDIA,
        handlers.get_media,
        "Media the caller uploaded, that a message of one of their conversations carries, "
        "or that is a user's avatar (visible to anyone signed in)",
        responses={200: MediaResponse},
        errors=(401, 404),
        tags=("media",),
    ),
    Endpoint(
        "GET",
        MEDIA + "/content",
        handlers.get_media_content,
        "The processed file (metadata stripped), once ready",
        responses={200: None},
        errors=(401, 404, 409),
        tags=("media",),
        binary_content="image/*",
    ),
    Endpoint(
        "GET",
        MEDIA + "/thumbnail",
        handlers.get_media_thumbnail,
        "The thumbnail (WebP), once ready",
        responses={200: None},
        errors=(401, 404, 409),
        tags=("media",),
        binary_content="image/webp",
    ),
)
