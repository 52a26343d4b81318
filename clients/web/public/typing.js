// Typing: who else is typing in the open conversation (user:typing, user:stopped-typing), and
// telling the others while this user types (typing:start, then typing:stop once idle or sent).

import { names } from "/people.js";
import { connected, emit } from "/realtime.js";
import { state } from "/store.js";

const $ = (id) => document.getElementById(id);
const TYPING_IDLE_MS = 3_000;
const SHOWN_MS = 6_000; // a typing:stop that never comes

const typists = new Map(); // user id -> the timer that forgets them
let typingSent = null; // the idle timer while typing:start is told

export function typing(conversationId, userId, on) {
  clearTimeout(typists.get(userId));
  typists.delete(userId);
  if (on) typists.set(userId, setTimeout(() => typing(conversationId, userId, false), SHOWN_MS));
  if (conversationId !== state.open) return;
  const who = [...typists.keys()].map((id) => names.get(id) ?? "someone");
  $("typing").textContent = who.length ? `${who.join(", ")} typing…` : "";
}

$("text").addEventListener("input", () => {
  if (!state.open || !connected()) return;
  if (!typingSent) emit("typing:start", { conversationId: state.open });
  clearTimeout(typingSent);
  typingSent = setTimeout(stopTyping, TYPING_IDLE_MS);
});

export function stopTyping() {
  if (!typingSent) return;
  clearTimeout(typingSent);
  typingSent = null;
  if (state.open && connected()) emit("typing:stop", { conversationId: state.open });
}
