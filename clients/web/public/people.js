// The people in the client's conversations: their display names, and whether each is online
// (asked of the gateway with presence:get, then told by user:online and user:offline).

import { call, connected } from "/realtime.js";
import { others, state } from "/store.js";

export const names = new Map(); // user id -> display name
const online = new Map(); // user id -> true / last-seen time
let hidden = null; // user ids whose presence is not shared (yet)

export function presenceOf(userId) {
  const seen = online.get(userId);
  if (seen === true) return { online: true, text: "online" };
  if (seen) return { online: false, text: `last seen ${new Date(seen).toLocaleString()}` };
  if (hidden?.has(userId)) return { online: false, text: "presence shown once they answer" };
  return { online: false, text: "offline" };
}

// seen: true when online, else the last-seen time.
export function setPresence(userId, seen) {
  online.set(userId, seen);
}

// Asks after everyone in the conversations; true once the answer is kept.
export async function askPresence() {
  if (!connected()) return false;
  const ids = [...new Set([...state.conversations.values()].flatMap((c) => others(c).map((p) => p.userId)))];
  if (!ids.length) return false;
  const ack = await call("presence:get", { userIds: ids.slice(0, 200) }).catch(() => null);
  if (!ack?.ok) return false;
  for (const [id, p] of Object.entries(ack.presence)) online.set(id, p.online ? true : p.lastSeenAt);
  // Presence is shared only once both took part; then the gateway tells both sides.
  hidden = new Set(ack.notFound);
  return true;
}
