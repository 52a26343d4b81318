// What the client holds of the conversations it is in, shared by the views: each conversation
// (as GET /api/chat lists it), the messages loaded of each, the highest seq held without a gap
// (what a sync asks after), and which conversation is open.

import { api } from "/session.js";

export const state = {
  conversations: new Map(), // id -> conversation
  messages: new Map(), // conversation id -> Map(seq -> message), once opened
  held: new Map(), // conversation id -> the highest seq held without a gap
  open: null, // the open conversation's id
};

// The participants other than the signed-in user.
export function others(conversation) {
  return conversation.participants.filter((p) => p.userId !== api.user.id);
}

export function titleOf(conversation) {
  if (conversation.title) return conversation.title;
  return others(conversation).map((p) => p.displayName || p.username).join(", ") || "Just you";
}
