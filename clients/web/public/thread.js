// The open conversation's messages: loaded 50 at a time upward ("Load older messages"), each
// kept once by seq whether it came from an event, an ack or a sync, shown with attachments and
// read markers; one's own can be edited and deleted.

import { api } from "/session.js";
import { loadConversations, renderConversations, renderPresence } from "/conversation-list.js";
import { thumbnail } from "/media.js";
import { names } from "/people.js";
import { markRead, noteRead, readBy } from "/read-markers.js";
import { connected, emit } from "/realtime.js";
import { state, titleOf } from "/store.js";

const $ = (id) => document.getElementById(id);

export async function openConversation(id) {
  if (state.open && connected()) emit("conversation:leave", { conversationId: state.open });
  state.open = id;
  const conversation = state.conversations.get(id);
  $("title").textContent = titleOf(conversation);
  $("composer").hidden = false;
  $("typing").textContent = "";
  if (!state.messages.has(id)) {
    state.messages.set(id, new Map());
    await loadOlder(id);
  }
  renderMessages();
  renderPresence();
  emit("conversation:join", { conversationId: id });
  markRead();
  $("text").focus();
}

function closeConversation() {
  state.open = null;
  $("title").textContent = "No conversation open";
  $("composer").hidden = true;
  $("messages").replaceChildren();
}

// On every connect: the open conversation is joined again.
export function rejoin() {
  if (state.open) emit("conversation:join", { conversationId: state.open });
}

async function loadOlder(id) {
  const known = state.messages.get(id);
  const first = Math.min(...known.keys());
  const query = known.size ? `?limit=50&before=${first}` : "?limit=50";
  const page = await api.call("GET", `/api/chat/${id}/messages${query}`);
  for (const message of page.messages) known.set(message.seq, message);
  advanceHeld(id);
  $("older").hidden = !page.hasMore;
  $("older").dataset.id = id;
}

$("older").addEventListener("click", async () => {
  await loadOlder(state.open);
  renderMessages();
});

function advanceHeld(id) {
  const known = state.messages.get(id);
  let held = state.held.get(id) ?? 0;
  while (known?.has(held + 1)) held += 1;
  state.held.set(id, Math.max(held, state.held.get(id) ?? 0));
}

// A message from a live event, an ack or a sync: kept once, by seq.
export function receive(message, live) {
  const id = message.conversationId;
  const known = state.messages.get(id);
  const conversation = state.conversations.get(id);
  const isNew = !known?.has(message.seq) && message.seq > (conversation?.lastSeq ?? 0);
  if (known) {
    known.set(message.seq, message);
    advanceHeld(id);
  } else if (message.seq === (state.held.get(id) ?? 0) + 1) {
    state.held.set(id, message.seq);
  }
  if (conversation) {
    if (message.seq >= conversation.lastSeq) {
      conversation.lastSeq = message.seq;
      conversation.lastMessage = message;
      conversation.lastActivityAt = message.createdAt;
    }
    if (isNew && message.senderId !== api.user.id && id !== state.open) conversation.unreadCount += 1;
  } else if (live) {
    loadConversations();
  }

  renderConversations();
  if (id === state.open) {
    renderMessages();
    if (isNew) markRead();
  }
}

// message:deleted
export function messageDeleted(gone) {
  const message = state.messages.get(gone.conversationId)?.get(gone.seq);
  if (message) receive({ ...message, content: null, deletedAt: gone.deletedAt }, false);
}

// conversation:read
export function conversationRead(read) {
  noteRead(read);
  if (state.open === read.conversationId) renderMessages();
}

// conversation:member-removed: this user's own removal closes the conversation.
export function memberRemoved(removed) {
  if (removed.userId === api.user.id) {
    state.conversations.delete(removed.conversationId);
    if (state.open === removed.conversationId) closeConversation();
    renderConversations();
  } else {
    loadConversations();
  }
}

function renderMessages() {
  const id = state.open;
  const list = $("messages");
  const conversation = state.conversations.get(id);
  const messages = [...(state.messages.get(id)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
  const lastOwn = messages.filter((m) => m.senderId === api.user.id).at(-1);
  list.replaceChildren();
  for (const message of messages) {
    const item = document.createElement("li");
    item.className = message.senderId === api.user.id ? "own" : "theirs";
    item.dataset.seq = message.seq;
    const who = document.createElement("strong");
    who.textContent = names.get(message.senderId) ?? "someone";
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = message.deletedAt ? "(message deleted)" : message.content;
    const meta = document.createElement("small");
    meta.textContent = new Date(message.createdAt).toLocaleTimeString() + (message.editedAt && !message.deletedAt ? " · edited" : "");
    item.append(who, text);
    for (const mediaId of message.deletedAt ? [] : message.attachments ?? []) item.append(thumbnail(mediaId));
    item.append(meta);
    if (message === lastOwn && conversation) {
      const readers = readBy(message, conversation);
      if (readers.length) {
        const read = document.createElement("small");
        read.className = "read";
        read.textContent = ` · read by ${readers.join(", ")}`;
        item.append(read);
      }
    }
    if (message.senderId === api.user.id && !message.deletedAt) item.append(...ownActions(message));
    list.append(item);
  }
  list.lastElementChild?.scrollIntoView({ block: "end" });
}

function ownActions(message) {
  const edit = document.createElement("button");
  edit.type = "button";
  edit.textContent = "Edit";
  edit.setAttribute("aria-label", `Edit message ${message.seq}`);
  edit.addEventListener("click", async () => {
    const content = prompt("Edit your message", message.content);
    if (content && content !== message.content) {
      const done = await api.call("PATCH", `/api/chat/${message.conversationId}/messages/${message.id}`, { content });
      receive(done.message, false);
    }
  });
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Delete";
  remove.setAttribute("aria-label", `Delete message ${message.seq}`);
  remove.addEventListener("click", async () => {
    if (!confirm("Delete this message?")) return;
    await api.call("DELETE", `/api/chat/${message.conversationId}/messages/${message.id}`);
    receive({ ...message, content: null, deletedAt: new Date().toISOString() }, false);
  });
  return [edit, remove];
}
