// The conversation list: loaded from GET /api/chat, newest activity first, each with its last
// message, unread count and, for a direct conversation, the other person's presence (also shown
// in the open conversation's header).

import { api } from "/session.js";
import { askPresence, names, presenceOf, setPresence } from "/people.js";
import { others, state, titleOf } from "/store.js";

const $ = (id) => document.getElementById(id);

let choose = () => {}; // what picking a conversation does (onChoose)

export function onChoose(open) {
  choose = open;
}

export async function loadConversations() {
  const page = await api.call("GET", "/api/chat?limit=50");
  for (const conversation of page.conversations) {
    state.conversations.set(conversation.id, conversation);
    for (const p of conversation.participants) names.set(p.userId, p.displayName || p.username);
    if (!state.held.has(conversation.id)) state.held.set(conversation.id, conversation.lastSeq);
  }
  renderConversations();
  refreshPresence();
}

export function renderConversations() {
  const list = $("conversations");
  list.replaceChildren();
  const sorted = [...state.conversations.values()].sort((a, b) => b.lastActivityAt.localeCompare(a.lastActivityAt));
  for (const conversation of sorted) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "conversation-item";
    button.dataset.id = conversation.id;
    if (conversation.id === state.open) button.setAttribute("aria-current", "true");
    const direct = conversation.type === "direct" ? others(conversation)[0] : null;
    const presence = direct ? presenceOf(direct.userId) : null;
    const dot = presence ? `<span class="dot ${presence.online ? "on" : "off"}" aria-hidden="true"></span>` : "";
    const last = conversation.lastMessage;
    const preview = last ? (last.content ?? "(deleted)") : "No messages yet";
    const unread = conversation.unreadCount ? `<span class="unread">${conversation.unreadCount} unread</span>` : "";
    button.innerHTML = `${dot}<span class="name"></span>${unread}<span class="preview"></span>`;
    button.querySelector(".name").textContent = titleOf(conversation) + (presence ? ` (${presence.text})` : "");
    button.querySelector(".preview").textContent = preview;
    button.addEventListener("click", () => choose(conversation.id));
    item.append(button);
    list.append(item);
  }
}

export function renderPresence() {
  renderConversations();
  const conversation = state.conversations.get(state.open);
  if (!conversation) return;
  $("presence").textContent = others(conversation).map((p) => `${p.displayName || p.username}: ${presenceOf(p.userId).text}`).join(" · ");
}

export async function refreshPresence() {
  if (await askPresence()) renderPresence();
}

// user:online (seen is true) and user:offline (seen is the last-seen time).
export function presenceChanged(userId, seen) {
  setPresence(userId, seen);
  renderPresence();
}
