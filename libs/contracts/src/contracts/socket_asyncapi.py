"""AsyncAPI 3.0 document of the gateway's Socket.IO API, as written to `docs/contracts`.

One channel, the default namespace `/`. Each client event is an operation the gateway
receives, with its ack as the reply (the success ack of `CLIENT_ACKS`, or `AckFailure`); each
server event is an operation the gateway sends. The CONNECT packet's `auth` and the
`connect_error` data are there too. Message ids are the event names in camelCase (AsyncAPI keys
take no colon); each message's `name` is the event name on the wire.
"""

from typing import Any, Final

import msgspec

from contracts.examples import SOCKET_EXAMPLES
from contracts.sockets import (
    CLIENT_ACKS,
    CLIENT_PAYLOADS,
    SERVER_PAYLOADS,
    AckFailure,
    ClientEvent,
    ConnectAuth,
    ConnectRefused,
    ServerEvent,
)

Json = dict[str, Any]

CHANNEL: Final = "socket"
CONNECT: Final = "connect"
CONNECT_ERROR: Final = "connect_error"

CLIENT_EVENT_SUMMARIES: Final[dict[ClientEvent, str]] = {
    ClientEvent.MESSAGE_SEND: (
        "Send a message; the ack carries it as stored. Resend with the same clientMessageId"
        " after a timeout or a reconnect: it is stored once."
    ),
    ClientEvent.TYPING_START: "Tell the conversation's other members that you are typing.",
    ClientEvent.TYPING_STOP: "Tell them that you stopped (it also stops by itself after 5 s).",
    ClientEvent.CONVERSATION_JOIN: "Say that you are looking at a conversation.",
    ClientEvent.CONVERSATION_LEAVE: "Say that you stopped looking at it.",
    ClientEvent.SYNC: (
        "Catch up after a reconnect: the messages after each seq, the changes after each"
        " changeSeq, a page of each."
    ),
    ClientEvent.PRESENCE_GET: "Who of these users is online, and when the others were last.",
}

SERVER_EVENT_SUMMARIES: Final[dict[ServerEvent, str]] = {
    ServerEvent.MESSAGE_RECEIVED: "A new message in one of your conversations.",
    ServerEvent.MESSAGE_UPDATED: "A message was edited.",
    ServerEvent.MESSAGE_DELETED: "A message was deleted.",
    ServerEvent.CONVERSATION_CREATED: "You are in a new conversation.",
    ServerEvent.CONVERSATION_READ: "A member read up to a seq.",
    ServerEvent.CONVERSATION_UPDATED: "A conversation's title changed.",
    ServerEvent.CONVERSATION_MEMBER_ADDED: "A member joined a conversation.",
    ServerEvent.CONVERSATION_MEMBER_REMOVED: "A member left or was removed.",
    ServerEvent.CONVERSATION_MEMBER_UPDATED: "A member's role changed.",
    ServerEvent.USER_TYPING: "A member is typing.",
    ServerEvent.USER_STOPPED_TYPING: "A member stopped typing.",
    ServerEvent.USER_JOINED: "A member is looking at the conversation.",
    ServerEvent.USER_LEFT: "A member stopped looking at it.",
    ServerEvent.USER_ONLINE: "A user you share a conversation with came online.",
    ServerEvent.USER_OFFLINE: "That user went offline.",
    ServerEvent.NOTIFICATION_NEW: "A notification for you.",
    ServerEvent.MEDIA_PROCESSED: "Your upload is processed (or failed).",
    ServerEvent.SYNC_REQUIRED: "You may have missed events: sync as after a reconnect.",
}

DESCRIPTION: Final = (
    "Socket.IO (Engine.IO 4) on the default namespace, over WebSocket or HTTP long-polling,"
    " through the API gateway at `/socket.io/`. Connect with `auth: {token}` (an access token"
    " from `POST /api/auth/login`); a refused connect gets `connect_error` with a message."
    " Every client event takes an ack callback and is answered `{ok: true, ...}` or"
    " `{ok: false, error: {code, message}}`. Order comes from `seq` (messages) and"
    " `changeSeq` (changes), never from arrival; after a reconnect or `sync:required`, call"
    " `sync` with the last of each you hold. See docs/realtime.md."
)


def message_id(event: str) -> str:
    """`message:send` -> `messageSend`, `conversation:member-added` ->
    `conversationMemberAdded`."""
    words = event.replace(":", "-").replace("_", "-").split("-")
    return words[0] + "".join(word.title() for word in words[1:])


def socket_asyncapi_document() -> Json:
    types = [
        ConnectAuth,
        ConnectRefused,
        *CLIENT_PAYLOADS.values(),
        *CLIENT_ACKS.values(),
        AckFailure,
        *SERVER_PAYLOADS.values(),
    ]
    _, schemas = msgspec.json.schema_components(
        list(dict.fromkeys(types)), ref_template="#/components/schemas/{name}"
    )
    messages: Json = {
        CONNECT: _message(CONNECT, ConnectAuth, "The CONNECT packet's `auth`."),
        "connectError": _message(CONNECT_ERROR, ConnectRefused, "Why the connect was refused."),
        "ackFailure": _message("ack", AckFailure, "The ack of a refused client event."),
    }
    operations: Json = {
        CONNECT: {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "messages": [_in_channel(CONNECT)],
            "summary": "Connect the default namespace.",
            "reply": {
                "channel": {"$ref": f"#/channels/{CHANNEL}"},
                "messages": [_in_channel("connectError")],
            },
        }
    }
    for event, payload in CLIENT_PAYLOADS.items():
        name, ack = message_id(event), f"{message_id(event)}Ack"
        summary = CLIENT_EVENT_SUMMARIES[event]
        messages[name] = _message(event, payload, summary)
        messages[ack] = _message("ack", CLIENT_ACKS[event], f"The ack of `{event}`.")
        operations[name] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "messages": [_in_channel(name)],
            "summary": summary,
            "reply": {
                "channel": {"$ref": f"#/channels/{CHANNEL}"},
                "messages": [_in_channel(ack), _in_channel("ackFailure")],
            },
        }
    for server_event, payload in SERVER_PAYLOADS.items():
        name = message_id(server_event)
        summary = SERVER_EVENT_SUMMARIES[server_event]
        messages[name] = _message(server_event, payload, summary)
        operations[name] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "messages": [_in_channel(name)],
            "summary": summary,
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "chat gateway Socket.IO API",
            "version": "1.0.0",
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "gateway": {
                "host": "localhost:3000",
                "pathname": "/socket.io/",
                "protocol": "ws",
                "description": "The API gateway of `make run` (behind TLS in production: wss).",
            }
        },
        "channels": {
            CHANNEL: {
                "address": "/",
                "title": "Default namespace",
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
            }
        },
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _message(event: str, payload: type, summary: str) -> Json:
    message: Json = {
        "name": event,
        "title": payload.__name__,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{payload.__name__}"},
    }
    example = SOCKET_EXAMPLES.get(payload)
    if example is not None:
        message["examples"] = [{"name": "example", "payload": msgspec.to_builtins(example)}]
    return message


def _in_channel(name: str) -> Json:
    return {"$ref": f"#/channels/{CHANNEL}/messages/{name}"}
