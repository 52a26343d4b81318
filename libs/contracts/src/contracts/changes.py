"""Conversation changes: which bus events are changes, and what a client sees of each.

A change is anything that alters what a client already holds of a conversation: an edit, a
delete, a read marker, the title, the members and their roles. Chat numbers them per
conversation (`changeSeq`, gap-free) and keeps them, so a client that was away replays them
(`GET /api/chat/:id/changes`, `sync`); the gateways emit the same payload live. Both build it
here, so the replay and the live event cannot differ.
"""

from contracts.events import (
    ConversationMemberAdded,
    ConversationMemberRemoved,
    ConversationMemberUpdated,
    ConversationUpdated,
    MessageDeleted,
    MessageRead,
    MessageUpdated,
)
from contracts.sockets import (
    ConversationReadPayload,
    ConversationTitle,
    ConversationUpdatedPayload,
    MemberAddedPayload,
    MemberRemovedPayload,
    MemberUpdatedPayload,
    MessageDeletedPayload,
    ServerEvent,
)
from contracts.wire import WireStruct

NumberedChange = (
    MessageDeleted
    | MessageRead
    | ConversationUpdated
    | ConversationMemberAdded
    | ConversationMemberRemoved
    | ConversationMemberUpdated
)
"""Changes that carry their `changeSeq` themselves."""

ChangeEvent = MessageUpdated | NumberedChange
"""Every change; an edit carries its `changeSeq` in the message it shows."""


def change_seq_of(event: ChangeEvent) -> int:
    return event.message.change_seq if isinstance(event, MessageUpdated) else event.change_seq


def client_change(event: ChangeEvent) -> tuple[ServerEvent, WireStruct]:  # noqa: PLR0911
    """The socket event and payload a client gets for a change."""
    match event:
        case MessageUpdated(message=view):
            return ServerEvent.MESSAGE_UPDATED, view
        case MessageDeleted():
            return ServerEvent.MESSAGE_DELETED, MessageDeletedPayload(
                conversation_id=event.conversation_id,
                message_id=event.message_id,
                seq=event.seq,
                deleted_at=event.deleted_at,
                change_seq=event.change_seq,
            )
        case MessageRead():
            return ServerEvent.CONVERSATION_READ, ConversationReadPayload(
                conversation_id=event.conversation_id,
                user_id=event.user_id,
                seq=event.seq,
                change_seq=event.change_seq,
            )
        case ConversationUpdated():
            return ServerEvent.CONVERSATION_UPDATED, ConversationUpdatedPayload(
                conversation=ConversationTitle(id=event.conversation_id, title=event.title),
                updated_by=event.updated_by,
                updated_at=event.updated_at,
                change_seq=event.change_seq,
            )
        case ConversationMemberAdded():
            return ServerEvent.CONVERSATION_MEMBER_ADDED, MemberAddedPayload(
                conversation_id=event.conversation_id,
                user_id=event.user_id,
                role=event.role,
                by=event.by,
                change_seq=event.change_seq,
            )
        case ConversationMemberRemoved():
            return ServerEvent.CONVERSATION_MEMBER_REMOVED, MemberRemovedPayload(
                conversation_id=event.conversation_id,
                user_id=event.user_id,
                by=event.by,
                change_seq=event.change_seq,
            )
        case ConversationMemberUpdated():
            return ServerEvent.CONVERSATION_MEMBER_UPDATED, MemberUpdatedPayload(
                conversation_id=event.conversation_id,
                user_id=event.user_id,
                role=event.role,
                by=event.by,
                change_seq=event.change_seq,
            )
