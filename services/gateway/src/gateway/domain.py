"""What the gateway's use cases speak in: the user behind a socket, and a refusal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from contracts.events import MessageView
from contracts.sockets import AckErrorCode


@dataclass(frozen=True, slots=True)
class SocketUser:
    """Who a connected socket belongs to: the token's user and session, and the token, sent on
    to chat so chat authorizes each read as that user."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    token: str


# What ``message:send``'s checks found (``send_checks``).
@dataclass(frozen=True, slots=True)
class RateLimited:
    retry_after_seconds: int


@dataclass(frozen=True, slots=True)
class NotAMember:
    pass


@dataclass(frozen=True, slots=True)
class AlreadySent:
    """A resend of a message already stored: answered with it, not published again."""

    message: MessageView


@dataclass(frozen=True, slots=True)
class Cleared:
    pass


type SendCheck = RateLimited | NotAMember | AlreadySent | Cleared


class Refused(Exception):
    """A client call refused: answered ``{ok: false, error: {code, message}}``."""

    def __init__(self, code: AckErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: AckErrorCode = code
        self.message = message


class ConnectionRefused(Exception):
    """A handshake refused: the client gets ``connect_error`` with this message."""


def too_fast(retry_after_seconds: int) -> str:
    return f"too fast; retry in {retry_after_seconds}s"
