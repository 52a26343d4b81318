"""Whether a media id may be a user's avatar: a processed image the user uploaded.

Media belongs to chat; auth asks it (``GET /api/media/:id``) with the user's own token, so
chat's rule of who may see a media applies, then checks that the user owns it and that it is a
ready image with a thumbnail.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from servicekit.peer_api import PeerApi


class _Media(msgspec.Struct):
    owner_id: UUID = msgspec.field(name="ownerId")
    status: str
    content_type: str = msgspec.field(name="contentType")
    has_thumbnail: bool = msgspec.field(name="hasThumbnail")


class _MediaResponse(msgspec.Struct):
    media: _Media


class AvatarCheck:
    def __init__(self, chat: PeerApi) -> None:
        self._chat = chat

    async def problem(self, token: str, user_id: UUID, media_id: UUID) -> str | None:
        """Why ``media_id`` cannot be the avatar of ``user_id``, or None when it can. Raises
        ``PeerUnavailableError`` if chat cannot be asked."""
        body = await self._chat.get_as(token, f"/api/media/{media_id}")
        if body is None:
            return "no such media of yours"
        media = msgspec.json.decode(body, type=_MediaResponse).media
        if media.owner_id != user_id:
            return "must be an image you uploaded"
        if media.status != "ready":
            return (
                "the image is not processed yet"
                if media.status == "pending"
                else ("the image was rejected")
            )
        if not media.content_type.startswith("image/") or not media.has_thumbnail:
            return "must be an image"
        return None
