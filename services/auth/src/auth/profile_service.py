"""The extended profile (bio, avatar, status, time zone) in MongoDB ``profiles``.

An avatar must be a processed image the user uploaded (``AvatarCheck``, asked of chat with the
user's token); choosing or clearing one is announced as ``user.avatar_changed``, from which
chat lets anyone signed in fetch it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from auth.api import Profile, UpdateProfileRequest
from auth.domain import MAX_BIO, MAX_STATUS_TEXT, timezone_errors
from auth.ports import Avatars, Profiles
from contracts.events import UserAvatarChanged
from servicekit.peer_api import PeerUnavailableError
from servicekit.refusals import FieldError, InvalidInput, Unavailable
from servicekit.unit_of_work import UnitOfWork


class ProfileService:
    def __init__(
        self,
        *,
        uow: UnitOfWork,
        profiles: Profiles,
        avatars: Avatars,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._profiles = profiles
        self._avatars = avatars
        self._clock = clock

    async def update(
        self, user_id: uuid.UUID, request: UpdateProfileRequest, token: str
    ) -> Profile:
        changes = {
            key: value
            for key, value in msgspec.structs.asdict(request).items()
            if value is not msgspec.UNSET
        }
        errors: list[FieldError] = []
        if isinstance(changes.get("bio"), str) and len(changes["bio"]) > MAX_BIO:
            errors.append(FieldError("bio", f"must be at most {MAX_BIO} characters"))
        status = changes.get("status_text")
        if isinstance(status, str) and len(status) > MAX_STATUS_TEXT:
            errors.append(FieldError("statusText", f"must be at most {MAX_STATUS_TEXT} characters"))
        if isinstance(changes.get("timezone"), str):
            errors += timezone_errors(changes["timezone"])
        avatar = changes.get("avatar_media_id")
        if isinstance(avatar, uuid.UUID):
            try:
                problem = await self._avatars.problem(token, user_id, avatar)
            except PeerUnavailableError:
                raise Unavailable("Avatars cannot be checked for a moment; retry") from None
            if problem is not None:
                errors.append(FieldError("avatarMediaId", problem))
        if errors:
            raise InvalidInput(errors)
        stored = {
            _camel(key): str(value) if isinstance(value, uuid.UUID) else value
            for key, value in changes.items()
        }
        profile = await self._profiles.update(user_id, stored)
        if "avatar_media_id" in changes:
            event = UserAvatarChanged(
                user_id=user_id, avatar_media_id=avatar, changed_at=self._clock()
            )
            async with self._uow.transaction() as work:
                work.emit(event)
        return msgspec.convert(profile, Profile, strict=False)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
