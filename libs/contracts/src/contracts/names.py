"""Exchange, queue and routing-key names of the `chat` bus: the only place these strings live."""

from typing import Final

EXCHANGE: Final = "chat"
DEAD_LETTER_EXCHANGE: Final = "chat.dlx"

MESSAGES_QUEUE: Final = "messages.queue"
NOTIFICATIONS_QUEUE: Final = "notifications.queue"
MEDIA_QUEUE: Final = "media.queue"
PUSH_QUEUE: Final = "push.queue"
CHAT_EVENTS_QUEUE: Final = "chat.events.queue"

USER_REGISTERED: Final = "user.registered"
USER_UPDATED: Final = "user.updated"
USER_DELETED: Final = "user.deleted"
USER_AVATAR_CHANGED: Final = "user.avatar_changed"
SESSION_REVOKED: Final = "session.revoked"
CONTACT_BLOCKED: Final = "contact.blocked"
CONTACT_UNBLOCKED: Final = "contact.unblocked"
CONVERSATION_CREATED: Final = "conversation.created"
CONVERSATION_UPDATED: Final = "conversation.updated"
CONVERSATION_MEMBER_ADDED: Final = "conversation.member_added"
CONVERSATION_MEMBER_REMOVED: Final = "conversation.member_removed"
CONVERSATION_MEMBER_UPDATED: Final = "conversation.member_updated"
CONVERSATION_ENGAGED: Final = "conversation.engaged"
CONVERSATION_ACTIVITY: Final = "conversation.activity"
MESSAGE_SEND: Final = "message.send"
MESSAGE_CREATED: Final = "message.created"
MESSAGE_REFUSED: Final = "message.refused"
MESSAGE_ALREADY_STORED: Final = "message.already_stored"
MESSAGE_UPDATED: Final = "message.updated"
MESSAGE_DELETED: Final = "message.deleted"
MESSAGE_READ: Final = "message.read"
PRESENCE_ONLINE: Final = "presence.online"
PRESENCE_OFFLINE: Final = "presence.offline"
NOTIFICATION_REQUESTED: Final = "notification.requested"
NOTIFICATION_CREATED: Final = "notification.created"
MEDIA_UPLOADED: Final = "media.uploaded"
MEDIA_PROCESSED: Final = "media.processed"

ROUTING_KEYS: Final = (
    USER_REGISTERED,
    USER_UPDATED,
    USER_DELETED,
    USER_AVATAR_CHANGED,
    SESSION_REVOKED,
    CONTACT_BLOCKED,
    CONTACT_UNBLOCKED,
    CONVERSATION_CREATED,
    CONVERSATION_UPDATED,
    CONVERSATION_MEMBER_ADDED,
    CONVERSATION_MEMBER_REMOVED,
    CONVERSATION_MEMBER_UPDATED,
    CONVERSATION_ENGAGED,
    CONVERSATION_ACTIVITY,
    MESSAGE_SEND,
    MESSAGE_CREATED,
    MESSAGE_REFUSED,
    MESSAGE_ALREADY_STORED,
    MESSAGE_UPDATED,
    MESSAGE_DELETED,
    MESSAGE_READ,
    PRESENCE_ONLINE,
    PRESENCE_OFFLINE,
    NOTIFICATION_REQUESTED,
    NOTIFICATION_CREATED,
    MEDIA_UPLOADED,
    MEDIA_PROCESSED,
)


def dead_letter_queue(queue: str) -> str:
    """Queue on `chat.dlx` that keeps what `queue` gave up on."""
    return f"{queue}.dlq"


def retry_queue(queue: str) -> str:
    """Delay queue that hands a failed delivery back to `queue` after a back-off."""
    return f"{queue}.retry"


def gateway_queue(instance_id: str) -> str:
    """Per-instance fan-out queue of one gateway process."""
    return f"gateway.{instance_id}.queue"
