// Starting a conversation: find people by name and chat with one, or a group of usernames with
// a title. Either opens once created.

import { api } from "/session.js";
import { loadConversations } from "/conversation-list.js";
import { state } from "/store.js";
import { openConversation } from "/thread.js";

const $ = (id) => document.getElementById(id);

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
