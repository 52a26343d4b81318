"""Sending a message from a socket: checked here, stored by chat, answered with chat's record.

The gateway publishes a ``MessageSend`` command and waits for chat's ``message.created`` (or
``message.refused``) naming the sender's ``clientMessageId``: the ack carries the stored
message, so a client that resends after a timeout gets the same message, never a second one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from contracts.events import MessageSend
from contracts.sockets import MessageSendPayload, MessageSent
from gateway.domain import (
    AlreadySent,
    Cleared,
    NotAMember,
    RateLimited,
    Refused,
    SocketUser,
    too_fast,
)
from gateway.pending_sends import PendingSends, SendRefusedError
from gateway.ports import EventBus, SendCheckStore
from servicekit.amqp.publisher import PublishFailedError
from servicekit.logs import get_logger

_log = get_logger("gateway.message_sending")

LATE_ANSWER_SECONDS = 300.0


class MessageSending:
    def __init__(
        self,
        *,
        checks: SendCheckStore,
        pending: PendingSends,
        bus: EventBus,
        ack_timeout: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._checks = checks
        self._pending = pending
        self._bus = bus
        self._ack_timeout = ack_timeout
        self._now = now

    async def send(self, sid: str, user: SocketUser, payload: MessageSendPayload) -> MessageSent:
        match await self._checks.check(
            sid=sid,
            user_id=user.user_id,
            token=user.token,
            conversation_id=payload.conversation_id,
            client_message_id=payload.client_message_id,
        ):
            case RateLimited(retry_after_seconds=seconds):
                raise Refused("rate_limited", too_fast(seconds))
            case NotAMember():
                raise Refused("not_found", "no such conversation")
            case AlreadySent(message=known):
                if known.conversation_id != payload.conversation_id:
                    # As REST answers it (409): the id names a message of another conversation.
                    raise Refused(
                        "conflict", "clientMessageId already used in another conversation"
                    )
                return MessageSent(message=known)
            case Cleared():
                pass
        stored = self._pending.expect(user.user_id, payload.client_message_id)
        command = MessageSend(
            conversation_id=payload.conversation_id,
            sender_id=user.user_id,
            content=payload.content,
            client_message_id=payload.client_message_id,
            attachments=payload.attachments,
            sent_at=self._now(),
            socket_id=sid,
        )
        try:
            await self._bus.publish(command)
        except PublishFailedError as error:
            self._pending.forget(user.user_id, payload.client_message_id)
            _log.error("message_send_not_published", error=str(error))
            raise Refused("internal", "the message was not accepted; retry") from None
        try:
            async with asyncio.timeout(self._ack_timeout):
                message = await asyncio.shield(stored)
        except SendRefusedError as refusal:
            raise Refused(refusal.code, refusal.detail) from None  # type: ignore[arg-type]
        except TimeoutError:
            self._pending.forget_later(
                user.user_id, payload.client_message_id, stored, LATE_ANSWER_SECONDS
            )
            raise Refused(
                "timeout", "not confirmed in time; resend with the same clientMessageId"
            ) from None
        self._checks.remember_sent(user.user_id, payload.client_message_id, message)
        return MessageSent(message=message)
