"""Base structs and constrained field types shared by every payload on the wire.

Payloads are frozen, keyword-only, camelCase on the wire and reject unknown fields, so a typo
or a field from a newer producer fails loudly at the consumer instead of being dropped.
"""

from datetime import datetime
from typing import Annotated, ClassVar
from uuid import UUID

import msgspec
from msgspec import Meta


class WireStruct(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """Base of every wire payload: strict, immutable, camelCase.

    msgspec inherits every option here except `kw_only`, and type checkers only see `frozen`
    where it is written, so each subclass repeats both.
    """


class Event(WireStruct, frozen=True, kw_only=True):
    """Payload of a message on the `chat` exchange, keyed by its routing key and version.

    `event_version` changes only with an incompatible shape; consumers reject other versions.
    """

    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1


UtcDatetime = Annotated[datetime, Meta(tz=True, description="RFC 3339 timestamp with offset")]
Seq = Annotated[int, Meta(ge=1, description="Per-conversation message sequence, gap-free")]
ChangeSeq = Annotated[
    int,
    Meta(
        ge=0,
        description="Per-conversation change sequence (edits, deletes, read markers, "
        "membership), gap-free; 0 before the first change",
    ),
]
MAX_MESSAGE_CHARS = 16000
MessageContent = Annotated[
    str, Meta(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=r"\S", description="Not blank")
]
ClientMessageId = Annotated[
    str, Meta(min_length=1, max_length=64, description="Sender-chosen idempotency key")
]
ConversationTitle = Annotated[str, Meta(min_length=1, max_length=200)]
MAX_ATTACHMENTS = 10
Attachments = Annotated[list[UUID], Meta(max_length=MAX_ATTACHMENTS)]
