"""HTTP: decode the request, call the service, encode the answer. No SQL, no rules."""

from __future__ import annotations

import uuid

from aiohttp import web

from chat.api import (
    AddParticipantsRequest,
    ChangesQuery,
    ConversationListQuery,
    CreateConversationRequest,
    EditMessageRequest,
    MessageResponse,
    MessagesQuery,
    MuteRequest,
    MuteResponse,
    NotificationLevelRequest,
    ReadRequest,
    SendMessageRequest,
    UpdateConversationRequest,
    UpdateParticipantRequest,
)
from chat.block_service import BlockService
from chat.service import ChatService, SendCommand
from chat.user_limits import UserLimits
from contracts.chat_api import (
    ConversationResponse,
)
from servicekit.http_app import json_response
from servicekit.request_body import path_id, read_json, read_query
from servicekit.tokens import authenticate, caller_token

CHAT_SERVICE = web.AppKey("chat_service", ChatService)
USER_LIMITS = web.AppKey("user_limits", UserLimits)
BLOCK_SERVICE = web.AppKey("block_service", BlockService)


def _conversation_id(request: web.Request) -> uuid.UUID:
    return path_id(request, "conversation_id", "No such conversation")


async def list_conversations(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    query = read_query(request.query, ConversationListQuery)
    page = await request.app[CHAT_SERVICE].conversations(claims.user_id, query.limit, query.cursor)
    return json_response(page)


async def list_conversation_ids(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    return json_response(await request.app[CHAT_SERVICE].conversation_ids(claims.user_id))


async def create_conversation(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    body = await read_json(request, CreateConversationRequest)
    view, created = await request.app[CHAT_SERVICE].create_conversation(
        claims.user_id, body, caller_token(request)
    )
    return json_response(ConversationResponse(conversation=view), status=201 if created else 200)


async def get_conversation(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    view = await request.app[CHAT_SERVICE].conversation(claims.user_id, conversation_id)
    return json_response(ConversationResponse(conversation=view))


async def update_conversation(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    body = await read_json(request, UpdateConversationRequest)
    view = await request.app[CHAT_SERVICE].rename(claims.user_id, conversation_id, body.title)
    return json_response(ConversationResponse(conversation=view))


async def add_participants(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    body = await read_json(request, AddParticipantsRequest)
    service = request.app[CHAT_SERVICE]
    view = await service.add_participants(
        claims.user_id, conversation_id, body.user_ids, caller_token(request)
    )
    return json_response(ConversationResponse(conversation=view))


async def remove_participant(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    user_id = path_id(request, "user_id", "Not a participant")
    await request.app[CHAT_SERVICE].remove_participant(claims.user_id, conversation_id, user_id)
    return web.Response(status=204)


async def update_participant(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    member_id = path_id(request, "user_id", "Not a participant")
    body = await read_json(request, UpdateParticipantRequest)
    view = await request.app[CHAT_SERVICE].set_role(
        claims.user_id, conversation_id, member_id, body.role
    )
    return json_response(ConversationResponse(conversation=view))


async def list_changes(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    query = read_query(request.query, ChangesQuery)
    page = await request.app[CHAT_SERVICE].changes(
        claims.user_id, conversation_id, query.after, query.limit
    )
    return json_response(page)


async def list_messages(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    query = read_query(request.query, MessagesQuery)
    page = await request.app[CHAT_SERVICE].history(claims.user_id, conversation_id, query)
    return json_response(page)


async def send_message(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    await request.app[USER_LIMITS].send(claims.user_id)
    conversation_id = _conversation_id(request)
    body = await read_json(request, SendMessageRequest)
    sent = await request.app[CHAT_SERVICE].send(
        SendCommand(
            conversation_id=conversation_id,
            sender_id=claims.user_id,
            content=body.content,
            client_message_id=body.client_message_id,
            attachments=body.attachments,
        )
    )
    return json_response(MessageResponse(message=sent.message), status=201 if sent.created else 200)


async def edit_message(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    message_id = path_id(request, "message_id", "No such message")
    body = await read_json(request, EditMessageRequest)
    service = request.app[CHAT_SERVICE]
    message = await service.edit(claims.user_id, conversation_id, message_id, body.content)
    return json_response(MessageResponse(message=message))


async def delete_message(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    message_id = path_id(request, "message_id", "No such message")
    await request.app[CHAT_SERVICE].delete(claims.user_id, conversation_id, message_id)
    return web.Response(status=204)


async def accept_conversation(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    await request.app[CHAT_SERVICE].accept(claims.user_id, _conversation_id(request))
    return web.Response(status=204)


async def set_notification_level(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    body = await read_json(request, NotificationLevelRequest)
    chosen = None if body.level == "default" else body.level
    result = await request.app[CHAT_SERVICE].set_notification_level(
        claims.user_id, conversation_id, chosen
    )
    return json_response(result)


async def set_muted(request: web.Request) -> web.Response:
    """Muting is the level ``none``; unmuting returns to the conversation's default."""
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    body = await read_json(request, MuteRequest)
    await request.app[CHAT_SERVICE].set_notification_level(
        claims.user_id, conversation_id, "none" if body.muted else None
    )
    return json_response(MuteResponse(muted=body.muted))


async def mark_read(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    conversation_id = _conversation_id(request)
    body = await read_json(request, ReadRequest)
    result = await request.app[CHAT_SERVICE].mark_read(claims.user_id, conversation_id, body.seq)
    return json_response(result)


async def list_blocks(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    return json_response(await request.app[BLOCK_SERVICE].blocks(claims.user_id))


async def block_user(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    blocked_id = path_id(request, "user_id", "No such user")
    await request.app[BLOCK_SERVICE].block(claims.user_id, blocked_id)
    return web.Response(status=204)


async def unblock_user(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    blocked_id = path_id(request, "user_id", "You have not blocked this user")
    await request.app[BLOCK_SERVICE].unblock(claims.user_id, blocked_id)
    return web.Response(status=204)
