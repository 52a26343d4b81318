"""One valid, deterministic instance of every payload, for docs and for tests across the fleet.

Tests adjust them with `msgspec.structs.replace`; the AsyncAPI export embeds them.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final
from uuid import UUID

from contracts import events, sockets
from contracts.wire import Event, WireStruct

ALICE: Final = UUID("00000000-0000-4000-8000-00000000a11c")
BOB: Final = UUID("00000000-0000-4000-8000-000000000b0b")
CONVERSATION: Final = UUID("00000000-0000-4000-8000-0000000c0001")
MESSAGE: Final = UUID("00000000-0000-4000-8000-0000000e0001")
MEDIA: Final = UUID("00000000-0000-4000-8000-0000000d0001")
SESSION: Final = UUID("00000000-0000-4000-8000-000000005e55")
NOTIFICATION: Final = UUID("00000000-0000-4000-8000-000000000f01")
AT: Final = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

MESSAGE_VIEW: Final = events.MessageView(
    id=MESSAGE,
    conversation_id=CONVERSATION,
    seq=42,
    sender_id=ALICE,
    content="Hello, Bob!",
    client_message_id="c-7f3a",
    attachments=[MEDIA],
    created_at=AT,
)

_EVENTS: tuple[Event, ...] = (
    events.UserRegistered(
        user_id=ALICE,
        email="alice@example.com",
        username="alice",
        display_name="Alice",
        created_at=AT,
    ),
    events.UserUpdated(user_id=ALICE, username="alice_w", display_name="Alice W.", updated_at=AT),
    events.UserDeleted(user_id=ALICE, deleted_at=AT),
    events.UserAvatarChanged(user_id=ALICE, avatar_media_id=MEDIA, changed_at=AT),
    events.ContactBlocked(blocker_id=ALICE, blocked_id=BOB, at=AT),
    events.ContactUnblocked(blocker_id=ALICE, blocked_id=BOB, at=AT),
    events.SessionRevoked(
        user_id=ALICE,
        session_id=SESSION,
        reason="logout",
        revoked_at=AT,
        expires_at=AT + timedelta(days=7),
    ),
    events.ConversationCreated(
        conversation_id=CONVERSATION,
        type="group",
        title="Weekend plans",
        created_by=ALICE,
        participant_ids=[ALICE, BOB],
        created_at=AT,
    ),
    events.ConversationUpdated(
        conversation_id=CONVERSATION, title="Trip", updated_by=BOB, updated_at=AT, change_seq=1
    ),
    events.ConversationMemberAdded(
        conversation_id=CONVERSATION,
        user_id=BOB,
        role="member",
        by=ALICE,
        at=AT,
        change_seq=2,
        conversation=events.ConversationSnapshot(
            conversation_id=CONVERSATION,
            type="group",
            title="Weekend plans",
            created_by=ALICE,
            participant_ids=[ALICE, BOB],
            created_at=AT,
        ),
    ),
    events.ConversationMemberRemoved(
        conversation_id=CONVERSATION, user_id=BOB, by=BOB, at=AT, change_seq=4
    ),
    events.ConversationMemberUpdated(
        conversation_id=CONVERSATION, user_id=BOB, role="admin", by=ALICE, at=AT, change_seq=3
    ),
    events.ConversationEngaged(conversation_id=CONVERSATION, user_id=BOB, at=AT),
    events.ConversationActivity(
        conversation_id=CONVERSATION,
        user_id=ALICE,
        kind="typing",
        origin_socket="Vx1xY2bAAAB",
        at=AT,
    ),
    events.MessageSend(
        conversation_id=CONVERSATION,
        sender_id=ALICE,
        content="Hello, Bob!",
        client_message_id="c-7f3a",
        attachments=[MEDIA],
        sent_at=AT,
        socket_id="Vx1xY2bAAAB",
    ),
    events.MessageCreated(message=MESSAGE_VIEW),
    events.MessageAlreadyStored(message=MESSAGE_VIEW),
    events.MessageRefused(
        conversation_id=CONVERSATION,
        sender_id=ALICE,
        client_message_id="c-7f3b",
        code="invalid",
        detail="attachments[0]: unknown media",
    ),
    events.MessageUpdated(
        message=events.MessageView(
            id=MESSAGE,
            conversation_id=CONVERSATION,
            seq=42,
            sender_id=ALICE,
            content="Hello, Bob! (edited)",
            client_message_id="c-7f3a",
            created_at=AT,
            edited_at=AT + timedelta(minutes=1),
        ),
        recipient_ids=[ALICE, BOB],
    ),
    events.MessageDeleted(
        conversation_id=CONVERSATION,
        message_id=MESSAGE,
        seq=42,
        deleted_by=ALICE,
        deleted_at=AT,
        recipient_ids=[ALICE, BOB],
    ),
    events.MessageRead(conversation_id=CONVERSATION, user_id=BOB, seq=42, read_at=AT),
    events.PresenceOnline(user_id=ALICE, at=AT, conversation_ids=[CONVERSATION]),
    events.PresenceOffline(user_id=ALICE, last_seen_at=AT, conversation_ids=[CONVERSATION]),
    events.NotificationRequested(message=MESSAGE_VIEW, notify_ids=[BOB]),
    events.NotificationCreated(
        notification_id=NOTIFICATION,
        recipient_id=BOB,
        kind="message",
        conversation_id=CONVERSATION,
        message_id=MESSAGE,
        preview="Hello, Bob!",
        count=3,
        created_at=AT,
    ),
    events.MediaUploaded(
        media_id=MEDIA,
        owner_id=ALICE,
        content_type="image/png",
        size_bytes=48213,
        storage_key="media/00/0d0001",
        uploaded_at=AT,
    ),
    events.MediaProcessed(
        media_id=MEDIA,
        owner_id=ALICE,
        status="ready",
        content_type="image/png",
        width=640,
        height=480,
        thumbnail_key="media/00/0d0001.thumb.webp",
        processed_at=AT,
    ),
)

EVENT_EXAMPLES: Final[Mapping[str, Event]] = MappingProxyType(
    {example.event_type: example for example in _EVENTS}
)

_SOCKET: tuple[WireStruct, ...] = (
    sockets.MessageSendPayload(
        conversation_id=CONVERSATION, content="Hello, Bob!", client_message_id="c-7f3a"
    ),
    sockets.TypingPayload(conversation_id=CONVERSATION),
    sockets.ConversationJoinPayload(conversation_id=CONVERSATION),
    sockets.ConversationLeavePayload(conversation_id=CONVERSATION),
    sockets.SyncPayload(since={CONVERSATION: 41}, changes_since={CONVERSATION: 3}),
    sockets.PresenceGetPayload(user_ids=[ALICE, BOB]),
    sockets.RoomUserPayload(conversation_id=CONVERSATION, user_id=BOB),
    sockets.UserOnlinePayload(user_id=BOB),
    sockets.UserOfflinePayload(user_id=BOB, last_seen_at=AT),
    sockets.ConversationReadPayload(
        conversation_id=CONVERSATION, user_id=BOB, seq=42, change_seq=5
    ),
    sockets.ConversationUpdatedPayload(
        conversation=sockets.ConversationTitle(id=CONVERSATION, title="Trip"),
        updated_by=BOB,
        updated_at=AT,
        change_seq=1,
    ),
    sockets.MemberAddedPayload(
        conversation_id=CONVERSATION, user_id=BOB, role="member", by=ALICE, change_seq=2
    ),
    sockets.MemberRemovedPayload(conversation_id=CONVERSATION, user_id=BOB, by=BOB, change_seq=4),
    sockets.MemberUpdatedPayload(
        conversation_id=CONVERSATION, user_id=BOB, role="admin", by=ALICE, change_seq=3
    ),
    sockets.MessageDeletedPayload(
        conversation_id=CONVERSATION, message_id=MESSAGE, seq=42, deleted_at=AT
    ),
    sockets.SyncRequiredPayload(),
    sockets.AckError(code="not_found", message="conversation not found"),
    sockets.AckFailure(error=sockets.AckError(code="rate_limited", message="slow down")),
    MESSAGE_VIEW,
    sockets.Done(),
    sockets.MessageSent(message=MESSAGE_VIEW),
    sockets.PresenceState(online=False, last_seen_at=AT),
    sockets.PresenceFound(
        presence={BOB: sockets.PresenceState(online=False, last_seen_at=AT)}, not_found=[ALICE]
    ),
    sockets.SyncChange(
        change_seq=4,
        event="conversation:member-removed",
        data={"conversationId": str(CONVERSATION), "userId": str(BOB), "by": str(BOB)},
        at=AT,
    ),
    sockets.SyncConversation(
        messages=[MESSAGE_VIEW],
        has_more=False,
        changes=[],
        last_change_seq=3,
        has_more_changes=False,
    ),
    sockets.Synced(
        conversations={CONVERSATION: sockets.SyncConversation(messages=[], has_more=False)},
        not_found=[],
    ),
)

SOCKET_EXAMPLES: Final[Mapping[type[WireStruct], WireStruct]] = MappingProxyType(
    {type(example): example for example in _SOCKET}
)
