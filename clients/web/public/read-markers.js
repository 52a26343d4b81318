// Read markers: the open conversation is marked read up to the last seq held while the page is
// visible, and each participant's marker (conversation:read) shows under one's last message.

import { api } from "/session.js";
import { renderConversations } from "/conversation-list.js";
import { others, state } from "/store.js";

// The others who have read up to the message.
export function readBy(message, conversation) {
  return others(conversation).filter((p) => p.lastReadSeq >= message.seq).map((p) => p.displayName || p.username);
}

export async function markRead() {
  const conversation = state.conversations.get(state.open);
  if (!conversation || document.visibilityState !== "visible") return;
  const seq = state.held.get(state.open) ?? 0;
  if (!seq || conversation.unreadCount === 0 && conversation.readUpTo >= seq) return;
  conversation.readUpTo = seq;
  conversation.unreadCount = 0;
  renderConversations();
  await api.call("POST", `/api/chat/${state.open}/read`, { seq }).catch(() => {});
}

// conversation:read, from someone else or from this user on another device.
export function noteRead(read) {
  const conversation = state.conversations.get(read.conversationId);
  const reader = conversation?.participants.find((p) => p.userId === read.userId);
  if (reader) reader.lastReadSeq = read.seq;
  if (read.userId === api.user.id && conversation) conversation.unreadCount = 0;
  renderConversations();
}

document.addEventListener("visibilitychange", markRead);
