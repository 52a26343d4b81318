// Catching up after a reconnect (or sync:required): everything after the last seq held in each
// conversation, page by page, through the gateway's sync.

import { loadConversations } from "/conversation-list.js";
import { call } from "/realtime.js";
import { state } from "/store.js";
import { receive } from "/thread.js";

export async function syncAll() {
  let since = Object.fromEntries([...state.conversations.keys()].map((id) => [id, state.held.get(id) ?? 0]));
  while (Object.keys(since).length) {
    let ack;
    try {
      ack = await call("sync", { since });
    } catch {
      return; // disconnected again: the next connect syncs
    }
    if (!ack.ok) return;
    const next = {};
    for (const [id, page] of Object.entries(ack.conversations)) {
      for (const message of page.messages ?? []) receive(message, false);
      if (page.hasMore && page.messages.length) next[id] = page.messages.at(-1).seq;
    }
    since = next;
  }
  loadConversations();
}
