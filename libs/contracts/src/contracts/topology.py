"""Who publishes each routing key and which queues bind which patterns on the `chat` exchange.

AMQP topology code declares queues from `QUEUES` and `GATEWAY_BINDING_KEYS`; the AsyncAPI
export derives producers and consumers from the same data, so the docs cannot drift from it.
"""

from collections.abc import Mapping
from typing import Final

import msgspec

from contracts import names


class QueueSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A durable queue, the topic patterns it binds on `chat`, and the service consuming it."""

    name: str
    binding_keys: tuple[str, ...]
    consumer: str


QUEUES: Final = (
    QueueSpec(name=names.MESSAGES_QUEUE, binding_keys=(names.MESSAGE_SEND,), consumer="chat"),
    QueueSpec(
        name=names.NOTIFICATIONS_QUEUE,
        # Edits and deletes revise the previews of the notifications that show the message.
        # A deleted account's notifications are deleted with it.
        binding_keys=(
            names.NOTIFICATION_REQUESTED,
            names.MESSAGE_UPDATED,
            names.MESSAGE_DELETED,
            names.USER_DELETED,
        ),
        consumer="workers",
    ),
    QueueSpec(name=names.MEDIA_QUEUE, binding_keys=(names.MEDIA_UPLOADED,), consumer="workers"),
    # Pushes to offline devices; a signed-out session's or deleted user's devices go.
    QueueSpec(
        name=names.PUSH_QUEUE,
        binding_keys=(names.NOTIFICATION_CREATED, names.SESSION_REVOKED, names.USER_DELETED),
        consumer="workers",
    ),
    # Chat's user directory and media metadata are replicas; a durable queue keeps them
    # complete across chat restarts.
    QueueSpec(
        name=names.CHAT_EVENTS_QUEUE,
        binding_keys=("user.*", names.MEDIA_PROCESSED),
        consumer="chat",
    ),
)

# Explicit message keys rather than `message.*`: the gateway publishes `message.send` and
# must not receive its own commands back.
GATEWAY_BINDING_KEYS: Final = (
    names.MESSAGE_CREATED,
    names.MESSAGE_REFUSED,
    names.MESSAGE_ALREADY_STORED,
    names.MESSAGE_UPDATED,
    names.MESSAGE_DELETED,
    names.MESSAGE_READ,
    "conversation.*",
    "presence.*",
    names.NOTIFICATION_CREATED,
    names.MEDIA_PROCESSED,
    names.SESSION_REVOKED,
    "contact.*",
)

PRODUCERS: Final[Mapping[str, str]] = {
    names.USER_REGISTERED: "auth",
    names.USER_UPDATED: "auth",
    names.USER_DELETED: "auth",
    names.USER_AVATAR_CHANGED: "auth",
    names.SESSION_REVOKED: "auth",
    names.CONTACT_BLOCKED: "chat",
    names.CONTACT_UNBLOCKED: "chat",
    names.CONVERSATION_CREATED: "chat",
    names.CONVERSATION_UPDATED: "chat",
    names.CONVERSATION_MEMBER_ADDED: "chat",
    names.CONVERSATION_MEMBER_REMOVED: "chat",
    names.CONVERSATION_MEMBER_UPDATED: "chat",
    names.CONVERSATION_ENGAGED: "chat",
    names.CONVERSATION_ACTIVITY: "gateway",
    names.MESSAGE_SEND: "gateway",
    names.MESSAGE_CREATED: "chat",
    names.MESSAGE_REFUSED: "chat",
    names.MESSAGE_ALREADY_STORED: "chat",
    names.MESSAGE_UPDATED: "chat",
    names.MESSAGE_DELETED: "chat",
    names.MESSAGE_READ: "chat",
    names.PRESENCE_ONLINE: "gateway",
    names.PRESENCE_OFFLINE: "gateway",
    names.NOTIFICATION_REQUESTED: "chat",
    names.NOTIFICATION_CREATED: "workers",
    names.MEDIA_UPLOADED: "chat",
    names.MEDIA_PROCESSED: "workers",
}


def durably_consumed(routing_key: str) -> bool:
    """Whether a durable queue binds this key: then a publish nobody routes is a fault.

    Keys only per-instance gateway queues bind (presence, typing-like fan-out) legitimately
    reach no queue while no gateway runs; clients catch up through sync and REST.
    """
    return any(topic_matches(key, routing_key) for spec in QUEUES for key in spec.binding_keys)


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` is zero or more words."""
    return _match(pattern.split("."), routing_key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[skip:]) for skip in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])
