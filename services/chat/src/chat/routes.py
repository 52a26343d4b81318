"""The URL table of the chat API; the OpenAPI document is generated from the same table."""

from __future__ import annotations

from chat import handlers
from chat.api import (
    AddParticipantsRequest,
    ConversationListQuery,
    ConversationPage,
    ConversationResponse,
    CreateConversationRequest,
    EditMessageRequest,
    MessagePage,
    MessageResponse,
    MessagesQuery,
    MuteRequest,
    MuteResponse,
    NotificationLevelRequest,
    NotificationLevelResponse,
    ReadRequest,
    ReadResponse,
    SendMessageRequest,
    UpdateConversationRequest,
)
from servicekit.openapi import Endpoint

OPENAPI_PATH = "/api/chat/openapi.json"
BODY = (400, 401, 413, 415, 422)
# Ids are UUID-shaped in the route itself: anything else under /api/chat is no route (404),
# not a conversation id for the handler to authenticate first.
UUID_PATTERN = "[0-9a-fA-F-]{36}"
CONVERSATION = "/api/chat/{conversation_id:" + UUID_PATTERN + "}"
MESSAGE = CONVERSATION + "/messages/{message_id:" + UUID_PATTERN + "}"

ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/chat",
        handlers.list_conversations,
        "The caller's conversations, most recently active first",
        query=ConversationListQuery,
        responses={200: ConversationPage},
        errors=(401, 422),
        tags=("conversations",),
    ),
    Endpoint(
        "POST",
        "/api/chat",
        handlers.create_conversation,
        "Start a conversation (a direct one with the same person is returned, 200)",
        request=CreateConversationRequest,
        responses={201: ConversationResponse, 200: ConversationResponse},
        errors=BODY,
        tags=("conversations",),
    ),
    Endpoint(
        "GET",
        CONVERSATION,
        handlers.get_conversation,
        "One conversation of the caller's",
        responses={200: ConversationResponse},
        errors=(401, 404),
        tags=("conversations",),
    ),
    Endpoint(
        "PATCH",
        CONVERSATION,
        handlers.update_conversation,
        "Rename a group (owners and admins)",
        request=UpdateConversationRequest,
        responses={200: ConversationResponse},
        errors=(*BODY, 403, 404, 409),
        tags=("conversations",),
    ),
    Endpoint(
        "POST",
        CONVERSATION + "/participants",
        handlers.add_participants,
        "Add people to a group (owners and admins)",
        request=AddParticipantsRequest,
        responses={200: ConversationResponse},
        errors=(*BODY, 403, 404, 409),
        tags=("conversations",),
    ),
    Endpoint(
        "DELETE",
        CONVERSATION + "/participants/{user_id:" + UUID_PATTERN + "}",
        handlers.remove_participant,
        "Leave a group, or remove someone (owners and admins)",
        responses={204: None},
        errors=(401, 403, 404, 409),
        tags=("conversations",),
    ),
    Endpoint(
        "GET",
        CONVERSATION + "/messages",
        handlers.list_messages,
        "History in ascending seq: the newest page, or before/after a seq",
        query=MessagesQuery,
        responses={200: MessagePage},
        errors=(401, 404, 422),
        tags=("messages",),
    ),
    Endpoint(
        "POST",
        CONVERSATION + "/messages",
        handlers.send_message,
        "Send a message (a repeated clientMessageId returns the stored one, 200)",
        request=SendMessageRequest,
        responses={201: MessageResponse, 200: MessageResponse},
        errors=(*BODY, 404, 409),
        tags=("messages",),
    ),
    Endpoint(
        "PATCH",
        MESSAGE,
        handlers.edit_message,
        "Edit a message (its sender only)",
        request=EditMessageRequest,
        responses={200: MessageResponse},
        errors=(*BODY, 403, 404, 409),
        tags=("messages",),
    ),
    Endpoint(
        "DELETE",
        MESSAGE,
        handlers.delete_message,
        "Delete a message, leaving a tombstone at its seq (sender, owners, admins)",
        responses={204: None},
        errors=(401, 403, 404),
        tags=("messages",),
    ),
    Endpoint(
        "POST",
        CONVERSATION + "/read",
        handlers.mark_read,
        "Move the caller's read marker forward",
        request=ReadRequest,
        responses={200: ReadResponse},
        errors=(*BODY, 404),
        tags=("messages",),
    ),
    Endpoint(
        "PUT",
        CONVERSATION + "/notifications",
        handlers.set_notification_level,
        "Choose which messages of the conversation notify the caller: all, mentions, none, or "
        "default (direct: all, group: mentions)",
        request=NotificationLevelRequest,
        responses={200: NotificationLevelResponse},
        errors=(*BODY, 404),
        tags=("conversations",),
    ),
    Endpoint(
        "PUT",
        CONVERSATION + "/mute",
        handlers.set_muted,
        "Mute (notification level none) or unmute (back to the default) the conversation for "
        "the caller",
        request=MuteRequest,
        responses={200: MuteResponse},
        errors=(*BODY, 404),
        tags=("conversations",),
    ),
)
