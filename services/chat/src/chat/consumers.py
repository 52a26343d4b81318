"""Chat's queue consumers: ``message.send`` commands, and the events chat keeps replicas of
(the user directory from auth, media outcomes from the workers).

Each decides what one event means and applies it in the inbox's transaction; retries,
dead-lettering and idempotency are the runner's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chat.media.service import MediaService
from chat.service import ChatService, SendCommand, refusal_code
from contracts.envelope import Envelope
from contracts.events import (
    MediaProcessed,
    MessageSend,
    UserAvatarChanged,
    UserDeleted,
    UserRegistered,
    UserUpdated,
)
from servicekit.logs import get_logger
from servicekit.postgres import Connection
from servicekit.refusals import Refusal

_log = get_logger("chat.consumers")


class MessageSendConsumer:
    """``messages.queue``: a batch of ``message.send`` commands stored in one transaction.

    Idempotent without an inbox: a repeated ``(sender, clientMessageId)`` returns the stored
    message and writes nothing, so a redelivered batch changes nothing.
    """

    def __init__(self, service: ChatService) -> None:
        self._service = service

    async def __call__(self, envelope: Envelope[Any], _: None) -> None:
        await self.handle_batch([envelope])

    async def handle_batch(self, envelopes: Sequence[Envelope[Any]]) -> None:
        commands: list[MessageSend] = [envelope.data for envelope in envelopes]
        outcomes = await self._service.send_all(
            [
                SendCommand(
                    conversation_id=command.conversation_id,
                    sender_id=command.sender_id,
                    content=command.content,
                    client_message_id=command.client_message_id,
                    attachments=list(command.attachments),
                )
                for command in commands
            ]
        )
        for outcome in outcomes:
            if isinstance(outcome, Refusal):
                # A decision, not a failure: retrying cannot change it. send_all announced it
                # as message.refused, which answers the sender's waiting ack.
                _log.warning(
                    "message_send_refused", code=refusal_code(outcome), detail=outcome.detail
                )


class ChatEventsConsumer:
    """``chat.events.queue``: ``user.*`` into the user replica (a deleted account leaves its
    groups), ``media.processed`` into media."""

    def __init__(self, service: ChatService, media: MediaService) -> None:
        self._service = service
        self._media = media

    async def __call__(self, envelope: Envelope[Any], conn: Connection) -> None:
        data = envelope.data
        if isinstance(data, MediaProcessed):
            await self._media.apply_processed(conn, data)
        elif isinstance(data, UserRegistered):
            await self._service.remember_user(
                conn, data.user_id, data.username, data.display_name, data.created_at
            )
        elif isinstance(data, UserUpdated):
            await self._service.remember_user(
                conn, data.user_id, data.username, data.display_name, data.updated_at
            )
        elif isinstance(data, UserDeleted):
            await self._service.forget_user(conn, data.user_id, data.deleted_at)
        elif isinstance(data, UserAvatarChanged):
            await self._service.remember_avatar(
                conn, data.user_id, data.avatar_media_id, data.changed_at
            )
        else:
            _log.info("chat_event_ignored", event_type=envelope.type)
