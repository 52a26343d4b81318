"""The notifications consumer: decides what a ``message.created`` means for its recipients.

For now it records that it saw the event; notification records come with the notifications
feature. Retries, dead-lettering and idempotency are the runner's, not this module's.
"""

from __future__ import annotations

from typing import Any

from contracts.envelope import Envelope
from servicekit.logs import get_logger

_log = get_logger("workers.notifications")


async def handle_message_created(envelope: Envelope[Any], _: None) -> None:
    _log.info("message_created_seen", event_id=str(envelope.id))
