// The reference web client: every screen uses only the public API (REST under /api, Socket.IO
// events and acks as docs/realtime.md and docs/contracts/socketio.asyncapi.json describe them).

import { io } from "/vendor/socket.io.esm.min.js";
import { Api, ApiError } from "/api.js";

const $ = (id) => document.getElementById(id);
const ACK_TIMEOUT_MS = 10_000;
const RESEND_PAUSE_MS = 500;
const TYPING_IDLE_MS = 3_000;

const api = new Api(showSignIn);
const state = {
  socket: null,
  conversations: new Map(), // id -> conversation view, with its messages by seq once opened
  messages: new Map(), // conversation id -> Map(seq -> message)
  held: new Map(), // conversation id -> the highest seq held without a gap
  open: null,
  online: new Map(), // user id -> true / last-seen time
  typing: new Map(), // user id -> timer
  names: new Map(), // user id -> display name
  notifications: 0,
  typingSent: null,
};

// --- signing in -------------------------------------------------------------------------------

function showSignIn() {
  state.socket?.disconnect();
  state.socket = null;
  $("app").hidden = true;
  $("signin").hidden = false;
}

async function signedIn() {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = api.user.displayName;
  state.names.set(api.user.id, api.user.displayName);
  api.scheduleRefresh();
  await Promise.all([loadConversations(), loadNotificationCount()]);
  connect();
}

function failed(error) {
  const detail = error instanceof ApiError && error.problem?.errors
    ? error.problem.errors.map((e) => `${e.field}: ${e.message}`).join("; ")
    : error.message;
  $("signin-error").textContent = detail;
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    await api.login(form.get("login").trim(), form.get("password"));
    await signedIn();
  } catch (error) {
    failed(error);
  }
});

$("register-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    await api.register(form.get("username").trim(), form.get("email").trim(), form.get("password"));
    await signedIn();
  } catch (error) {
    failed(error);
  }
});

$("logout").addEventListener("click", async () => {
  await api.logout().catch(() => {});
  showSignIn();
});

// --- the socket -------------------------------------------------------------------------------

function connect() {
  const socket = io({ transports: ["websocket"], auth: (send) => send({ token: api.token }) });
  state.socket = socket;
  socket.on("connect", () => {
    $("offline").hidden = true;
    syncAll();
    if (state.open) socket.emit("conversation:join", { conversationId: state.open }, () => {});
    askPresence();
  });
  socket.on("disconnect", () => { $("offline").hidden = false; });
  socket.on("connect_error", async (error) => {
    $("offline").hidden = false;
    if (/token/i.test(error.message)) await api.refresh().catch(() => {}); // then it retries
  });
  socket.on("sync:required", syncAll);
  socket.on("message:received", (message) => receive(message, true));
  socket.on("message:updated", (message) => receive(message, false));
  socket.on("message:deleted", (gone) => {
    const message = state.messages.get(gone.conversationId)?.get(gone.seq);
    if (message) receive({ ...message, content: null, deletedAt: gone.deletedAt }, false);
  });
  socket.on("conversation:created", () => loadConversations());
  socket.on("conversation:updated", () => loadConversations());
  socket.on("conversation:member-added", () => loadConversations());
  socket.on("conversation:member-removed", (removed) => {
    if (removed.userId === api.user.id) {
      state.conversations.delete(removed.conversationId);
      if (state.open === removed.conversationId) closeConversation();
      renderConversations();
    } else {
      loadConversations();
    }
  });
  socket.on("conversation:read", (read) => {
    const conversation = state.conversations.get(read.conversationId);
    const reader = conversation?.participants.find((p) => p.userId === read.userId);
    if (reader) reader.lastReadSeq = read.seq;
    if (read.userId === api.user.id && conversation) conversation.unreadCount = 0;
    renderConversations();
    if (state.open === read.conversationId) renderMessages();
  });
  socket.on("user:online", ({ userId }) => { state.online.set(userId, true); renderPresence(); });
  socket.on("user:offline", ({ userId, lastSeenAt }) => { state.online.set(userId, lastSeenAt); renderPresence(); });
  socket.on("user:typing", ({ conversationId, userId }) => typing(conversationId, userId, true));
  socket.on("user:stopped-typing", ({ conversationId, userId }) => typing(conversationId, userId, false));
  socket.on("notification:new", () => { state.notifications += 1; renderNotifications(); });
  socket.on("media:processed", (media) => state.uploads?.get(media.mediaId)?.(media));
}

function call(event, payload) {
  return state.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
}

// After a reconnect (or sync:required): everything after the last seq held, page by page.
async function syncAll() {
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

// --- conversations ----------------------------------------------------------------------------

async function loadConversations() {
  const page = await api.call("GET", "/api/chat?limit=50");
  for (const conversation of page.conversations) {
    state.conversations.set(conversation.id, conversation);
    for (const p of conversation.participants) state.names.set(p.userId, p.displayName || p.username);
    if (!state.held.has(conversation.id)) state.held.set(conversation.id, conversation.lastSeq);
  }
  renderConversations();
  askPresence();
}

function others(conversation) {
  return conversation.participants.filter((p) => p.userId !== api.user.id);
}

function titleOf(conversation) {
  if (conversation.title) return conversation.title;
  return others(conversation).map((p) => p.displayName || p.username).join(", ") || "Just you";
}

function presenceOf(userId) {
  const seen = state.online.get(userId);
  if (seen === true) return { online: true, text: "online" };
  if (seen) return { online: false, text: `last seen ${new Date(seen).toLocaleString()}` };
  if (state.presenceHidden?.has(userId)) return { online: false, text: "presence shown once they answer" };
  return { online: false, text: "offline" };
}

function renderConversations() {
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
    button.addEventListener("click", () => openConversation(conversation.id));
    item.append(button);
    list.append(item);
  }
}

async function askPresence() {
  if (!state.socket?.connected) return;
  const ids = [...new Set([...state.conversations.values()].flatMap((c) => others(c).map((p) => p.userId)))];
  if (!ids.length) return;
  const ack = await call("presence:get", { userIds: ids.slice(0, 200) }).catch(() => null);
  if (!ack?.ok) return;
  for (const [id, p] of Object.entries(ack.presence)) state.online.set(id, p.online ? true : p.lastSeenAt);
  // Presence is shared only once both took part; then the gateway tells both sides.
  state.presenceHidden = new Set(ack.notFound);
  renderPresence();
}

function renderPresence() {
  renderConversations();
  const conversation = state.conversations.get(state.open);
  if (!conversation) return;
  $("presence").textContent = others(conversation).map((p) => `${p.displayName || p.username}: ${presenceOf(p.userId).text}`).join(" · ");
}

$("find-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = $("find").value.trim();
  const found = $("found");
  found.replaceChildren();
  if (!q) return;
  const page = await api.call("GET", `/api/users?q=${encodeURIComponent(q)}`);
  for (const user of page.users.filter((u) => u.id !== api.user.id)) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `Chat with ${user.displayName} (@${user.username})`;
    button.addEventListener("click", async () => {
      const created = await api.call("POST", "/api/chat", { participantIds: [user.id] });
      found.replaceChildren();
      state.conversations.set(created.conversation.id, created.conversation);
      await loadConversations();
      openConversation(created.conversation.id);
    });
    item.append(button);
    found.append(item);
  }
  if (!found.children.length) found.innerHTML = "<li>Nobody by that name</li>";
});

$("group-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const names = form.get("members").split(",").map((n) => n.trim()).filter(Boolean);
  const ids = [];
  for (const name of names) {
    const page = await api.call("GET", `/api/users?q=${encodeURIComponent(name)}`);
    const user = page.users.find((u) => u.username.toLowerCase() === name.toLowerCase());
    if (user) ids.push(user.id);
  }
  if (!ids.length) return;
  const created = await api.call("POST", "/api/chat", { participantIds: ids, title: form.get("title"), type: "group" });
  event.target.reset();
  await loadConversations();
  openConversation(created.conversation.id);
});

// --- one conversation -------------------------------------------------------------------------

async function openConversation(id) {
  if (state.open && state.socket?.connected) state.socket.emit("conversation:leave", { conversationId: state.open }, () => {});
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
  state.socket?.emit("conversation:join", { conversationId: id }, () => {});
  markRead();
  $("text").focus();
}

function closeConversation() {
  state.open = null;
  $("title").textContent = "No conversation open";
  $("composer").hidden = true;
  $("messages").replaceChildren();
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
function receive(message, live) {
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

function readBy(message, conversation) {
  return others(conversation).filter((p) => p.lastReadSeq >= message.seq).map((p) => p.displayName || p.username);
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
    who.textContent = state.names.get(message.senderId) ?? "someone";
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

function thumbnail(mediaId) {
  const image = document.createElement("img");
  image.className = "thumbnail";
  image.alt = "image";
  api.blobUrl(`/api/media/${mediaId}/thumbnail`)
    .catch(() => api.blobUrl(`/api/media/${mediaId}/content`))
    .then((url) => { image.src = url; })
    .catch(() => { image.alt = "image (not available)"; });
  return image;
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

async function markRead() {
  const conversation = state.conversations.get(state.open);
  if (!conversation || document.visibilityState !== "visible") return;
  const seq = state.held.get(state.open) ?? 0;
  if (!seq || conversation.unreadCount === 0 && conversation.readUpTo >= seq) return;
  conversation.readUpTo = seq;
  conversation.unreadCount = 0;
  renderConversations();
  await api.call("POST", `/api/chat/${state.open}/read`, { seq }).catch(() => {});
}

document.addEventListener("visibilitychange", markRead);

function typing(conversationId, userId, on) {
  clearTimeout(state.typing.get(userId));
  state.typing.delete(userId);
  if (on) state.typing.set(userId, setTimeout(() => typing(conversationId, userId, false), 6_000));
  if (conversationId !== state.open) return;
  const names = [...state.typing.keys()].map((id) => state.names.get(id) ?? "someone");
  $("typing").textContent = names.length ? `${names.join(", ")} typing…` : "";
}

// --- sending ----------------------------------------------------------------------------------

// Resent with the same clientMessageId until acknowledged, as docs/realtime.md tells clients.
async function sendMessage(conversationId, content, attachments = []) {
  const payload = { conversationId, content, clientMessageId: crypto.randomUUID(), attachments };
  for (;;) {
    if (!state.socket?.connected) {
      await new Promise((resolve) => state.socket.once("connect", resolve));
    }
    let ack;
    try {
      ack = await call("message:send", payload);
    } catch {
      await new Promise((resolve) => setTimeout(resolve, RESEND_PAUSE_MS));
      continue; // no answer in time: resend
    }
    if (ack.ok) return receive(ack.message, false);
    if (!["timeout", "internal", "rate_limited"].includes(ack.error.code)) throw new Error(ack.error.message);
    await new Promise((resolve) => setTimeout(resolve, ack.error.code === "rate_limited" ? 1_000 : RESEND_PAUSE_MS));
  }
}

async function uploadImage(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  state.uploads ??= new Map();
  const { media } = await api.call("POST", "/api/media", form);
  if (media.status === "ready") return media;
  const processed = await new Promise((resolve) => {
    state.uploads.set(media.id, resolve);
    // In case the event came before we listened, or the socket was away: ask once in a while.
    const poll = setInterval(async () => {
      const now = (await api.call("GET", `/api/media/${media.id}`).catch(() => null))?.media;
      if (now && now.status !== "pending") resolve({ ...now, mediaId: now.id });
    }, 2_000);
    state.uploads.set(media.id, (done) => { clearInterval(poll); resolve(done); });
  });
  state.uploads.delete(media.id);
  if (processed.status !== "ready") throw new Error(`the image was refused: ${processed.reason ?? processed.status}`);
  return media;
}

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const conversationId = state.open;
  const text = $("text").value.trim();
  const file = $("image").files[0];
  if (!conversationId || (!text && !file)) return;
  $("text").value = "";
  $("image").value = "";
  stopTyping();
  // One after another, in the order they were written: each waits for the one before's ack.
  state.sending = (state.sending ?? Promise.resolve()).then(async () => {
    try {
      const attachments = file ? [(await uploadImage(file)).id] : [];
      await sendMessage(conversationId, text || `Image: ${file.name}`, attachments);
    } catch (error) {
      $("typing").textContent = `Not sent: ${error.message}`;
    }
  });
});

$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

$("text").addEventListener("input", () => {
  if (!state.open || !state.socket?.connected) return;
  if (!state.typingSent) state.socket.emit("typing:start", { conversationId: state.open }, () => {});
  clearTimeout(state.typingSent);
  state.typingSent = setTimeout(stopTyping, TYPING_IDLE_MS);
});

function stopTyping() {
  if (!state.typingSent) return;
  clearTimeout(state.typingSent);
  state.typingSent = null;
  if (state.open && state.socket?.connected) state.socket.emit("typing:stop", { conversationId: state.open }, () => {});
}

// --- notifications ----------------------------------------------------------------------------

async function loadNotificationCount() {
  const page = await api.call("GET", "/api/notifications?unread=true&limit=1");
  state.notifications = page.unreadCount;
  renderNotifications();
}

function renderNotifications() {
  $("notification-count").textContent = String(state.notifications);
  $("notifications").title = `${state.notifications} unread; press to mark them all read`;
}

$("notifications").addEventListener("click", async () => {
  const marked = await api.call("POST", "/api/notifications/read", { all: true });
  state.notifications = marked.unreadCount;
  renderNotifications();
});

// --- start ------------------------------------------------------------------------------------

window.addEventListener("offline", () => { $("offline").hidden = false; });

if (api.session) {
  signedIn().catch(showSignIn);
} else {
  showSignIn();
}
