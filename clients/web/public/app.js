// The reference web client: every screen uses only the public API (REST under /api, Socket.IO
// events and acks as docs/realtime.md and docs/contracts/socketio.asyncapi.json describe them).
// This entry point wires the modules: which one handles each socket event, what signing in
// and out does, and what picking a conversation in the list does. The composer and the forms
// that start a conversation bind their elements on import.

import "/composer.js";
import { loadConversations, onChoose, presenceChanged, refreshPresence } from "/conversation-list.js";
import { mediaProcessed } from "/media.js";
import "/new-conversation.js";
import { loadNotificationCount, notificationArrived } from "/notifications.js";
import { names } from "/people.js";
import { connect, disconnect } from "/realtime.js";
import { startSession } from "/session.js";
import { syncAll } from "/sync.js";
import { conversationRead, memberRemoved, messageDeleted, openConversation, receive, rejoin } from "/thread.js";
import { typing } from "/typing.js";

const socketEvents = {
  connect: () => {
    syncAll();
    rejoin();
    refreshPresence();
  },
  "sync:required": syncAll,
  "message:received": (message) => receive(message, true),
  "message:updated": (message) => receive(message, false),
  "message:deleted": messageDeleted,
  "conversation:created": () => loadConversations(),
  "conversation:updated": () => loadConversations(),
  "conversation:member-added": () => loadConversations(),
  "conversation:member-removed": memberRemoved,
  "conversation:read": conversationRead,
  "user:online": ({ userId }) => presenceChanged(userId, true),
  "user:offline": ({ userId, lastSeenAt }) => presenceChanged(userId, lastSeenAt),
  "user:typing": ({ conversationId, userId }) => typing(conversationId, userId, true),
  "user:stopped-typing": ({ conversationId, userId }) => typing(conversationId, userId, false),
  "notification:new": () => notificationArrived(),
  "media:processed": mediaProcessed,
};

onChoose(openConversation);

startSession({
  async signedIn(user) {
    names.set(user.id, user.displayName);
    await Promise.all([loadConversations(), loadNotificationCount()]);
    connect(socketEvents);
  },
  signedOut: disconnect,
});
