"""Chat's REST API, called on a user's behalf with their own token.

The gateway owns no conversation data: who belongs where, and history for catching up, come
from chat, so chat's authorization (404 for what the user may not see) applies unchanged. Its
answers are decoded with the types chat encodes them with (``contracts.chat_api``).
"""

from __future__ import annotations

from uuid import UUID

import aiohttp
import msgspec

from contracts.chat_api import (
    ChangePage,
    ConversationIds,
    ConversationResponse,
    ConversationView,
    MessagePage,
)
from servicekit.peer_api import PeerApi, PeerUnavailableError

ChatUnavailableError = PeerUnavailableError
"""Chat did not answer as expected; the caller reports an internal error."""


class ChatClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._get = PeerApi(session, base_url, "chat").get_as

    async def conversation(self, token: str, conversation_id: UUID) -> ConversationView | None:
        """The conversation if the token's user is a participant, else None."""
        body = await self._get(token, f"/api/chat/{conversation_id}")
        return (
            None
            if body is None
            else msgspec.json.decode(body, type=ConversationResponse).conversation
        )

    async def conversation_ids(self, token: str) -> ConversationIds:
        """Every conversation the token's user is in: ids only, one request."""
        body = await self._get(token, "/api/chat/ids")
        if body is None:
            raise ChatUnavailableError("conversation list refused")
        return msgspec.json.decode(body, type=ConversationIds)

    async def messages_after(
        self, token: str, conversation_id: UUID, after: int, limit: int
    ) -> MessagePage | None:
        body = await self._get(
            token,
            f"/api/chat/{conversation_id}/messages",
            {"after": str(after), "limit": str(limit)},
        )
        return None if body is None else msgspec.json.decode(body, type=MessagePage)

    async def changes_after(
        self, token: str, conversation_id: UUID, after: int, limit: int
    ) -> ChangePage | None:
        body = await self._get(
            token,
            f"/api/chat/{conversation_id}/changes",
            {"after": str(after), "limit": str(limit)},
        )
        return None if body is None else msgspec.json.decode(body, type=ChangePage)
