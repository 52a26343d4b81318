"""Payload types of every event and command on the `chat` exchange, keyed by routing key."""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from contracts.events.conversations import (
    ActivityKind,
    ConversationActivity,
    ConversationCreated,
    ConversationEngaged,
    ConversationMemberAdded,
    ConversationMemberRemoved,
    ConversationMemberUpdated,
    ConversationSnapshot,
    ConversationType,
    ConversationUpdated,
    MemberRole,
)
from contracts.events.media import MediaProcessed, MediaStatus, MediaUploaded
from contracts.events.messages import (
    MessageAlreadyStored,
    MessageCreated,
    MessageDeleted,
    MessageRead,
    MessageRefused,
    MessageSend,
    MessageUpdated,
    MessageView,
)
from contracts.events.notifications import (
    NotificationCreated,
    NotificationKind,
    NotificationRequested,
)
from contracts.events.presence import PresenceOffline, PresenceOnline
from contracts.events.sessions import RevocationReason, SessionRevoked
from contracts.events.users import (
    ContactBlocked,
    ContactUnblocked,
    DisplayName,
    Email,
    UserAvatarChanged,
    UserDeleted,
    Username,
    UserRegistered,
    UserUpdated,
)
from contracts.wire import Event

EVENT_TYPES: Final[Mapping[str, type[Event]]] = MappingProxyType(
    {
        payload.event_type: payload
        for payload in (
            UserRegistered,
            UserUpdated,
            UserDeleted,
            UserAvatarChanged,
            SessionRevoked,
            ContactBlocked,
            ContactUnblocked,
            ConversationCreated,
            ConversationUpdated,
            ConversationMemberAdded,
            ConversationMemberRemoved,
            ConversationMemberUpdated,
            ConversationEngaged,
            ConversationActivity,
            MessageSend,
            MessageCreated,
            MessageAlreadyStored,
            MessageRefused,
            MessageUpdated,
            MessageDeleted,
            MessageRead,
            PresenceOnline,
            PresenceOffline,
            NotificationRequested,
            NotificationCreated,
            MediaUploaded,
            MediaProcessed,
        )
    }
)

__all__ = [
    "EVENT_TYPES",
    "ActivityKind",
    "ContactBlocked",
    "ContactUnblocked",
    "ConversationActivity",
    "ConversationCreated",
    "ConversationEngaged",
    "ConversationMemberAdded",
    "ConversationMemberRemoved",
    "ConversationMemberUpdated",
    "ConversationSnapshot",
    "ConversationType",
    "ConversationUpdated",
    "DisplayName",
    "Email",
    "MediaProcessed",
    "MediaStatus",
    "MediaUploaded",
    "MemberRole",
    "MessageAlreadyStored",
    "MessageCreated",
    "MessageDeleted",
    "MessageRead",
    "MessageRefused",
    "MessageSend",
    "MessageUpdated",
    "MessageView",
    "NotificationCreated",
    "NotificationKind",
    "NotificationRequested",
    "PresenceOffline",
    "PresenceOnline",
    "RevocationReason",
    "SessionRevoked",
    "UserAvatarChanged",
    "UserDeleted",
    "UserRegistered",
    "UserUpdated",
    "Username",
]
