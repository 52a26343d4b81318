"""Events chat publishes about conversations and their membership."""

from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta

from contracts import names
from contracts.wire import ChangeSeq, ConversationTitle, Event, UtcDatetime, WireStruct

ConversationType = Literal["direct", "group"]
MemberRole = Literal["owner", "admin", "member"]


class ConversationCreated(Event, frozen=True, kw_only=True):
    """A conversation exists; `participantIds` includes its creator."""

    event_type = names.CONVERSATION_CREATED

    conversation_id: UUID
    type: ConversationType
    title: ConversationTitle | None = None
    created_by: UUID
    participant_ids: Annotated[list[UUID], Meta(min_length=1)]
    created_at: UtcDatetime


class ConversationSnapshot(WireStruct, frozen=True, kw_only=True):
    """What a member newly added needs to show the conversation: the shape of
    `conversation.created`."""

    conversation_id: UUID
    type: ConversationType
    title: ConversationTitle | None = None
    created_by: UUID
    participant_ids: Annotated[list[UUID], Meta(min_length=1)]
    created_at: UtcDatetime


class ConversationUpdated(Event, frozen=True, kw_only=True):
    """A conversation's title changed (`null` clears it)."""

    event_type = names.CONVERSATION_UPDATED

    conversation_id: UUID
    title: ConversationTitle | None
    updated_by: UUID
    updated_at: UtcDatetime
    change_seq: ChangeSeq = 0


class ConversationMemberAdded(Event, frozen=True, kw_only=True):
    """`userId` joined the conversation, added by `by`."""

    event_type = names.CONVERSATION_MEMBER_ADDED

    conversation_id: UUID
    user_id: UUID
    role: MemberRole
    by: UUID
    at: UtcDatetime
    change_seq: ChangeSeq = 0
    conversation: ConversationSnapshot | None = None
    """The conversation as it is now, for the added member's devices."""


class ConversationMemberUpdated(Event, frozen=True, kw_only=True):
    """`userId`'s role changed, by `by` (an owner granting or revoking admin, or handing
    ownership over: then the previous owner becomes an admin, as a second event)."""

    event_type = names.CONVERSATION_MEMBER_UPDATED

    conversation_id: UUID
    user_id: UUID
    role: MemberRole
    by: UUID
    at: UtcDatetime
    change_seq: ChangeSeq = 0


class ConversationEngaged(Event, frozen=True, kw_only=True):
    """`userId` took part in the conversation for the first time: sent a message in it or
    accepted it (its creator takes part from the start). Presence and read markers are shared
    only through conversations both users took part in, so a conversation someone else opened
    with you tells them nothing until you answer."""

    event_type = names.CONVERSATION_ENGAGED

    conversation_id: UUID
    user_id: UUID
    at: UtcDatetime


class ConversationMemberRemoved(Event, frozen=True, kw_only=True):
    """`userId` left the conversation (`by` equals `userId`) or was removed by `by`."""

    event_type = names.CONVERSATION_MEMBER_REMOVED

    conversation_id: UUID
    user_id: UUID
    by: UUID
    at: UtcDatetime
    change_seq: ChangeSeq = 0


ActivityKind = Literal["typing", "stopped-typing", "joined", "left"]


class ConversationActivity(Event, frozen=True, kw_only=True):
    """Ephemeral room activity a gateway instance relays to every other: typing, join, leave.

    `originSocket` is the socket that caused it, which no instance echoes it back to.
    """

    event_type = names.CONVERSATION_ACTIVITY
    conversation_id: UUID
    user_id: UUID
    kind: ActivityKind
    origin_socket: Annotated[str, Meta(min_length=1, max_length=64)]
    at: UtcDatetime
