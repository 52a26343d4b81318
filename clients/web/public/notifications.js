// The unread notifications count in the header (GET /api/notifications, notification:new);
// pressing it marks them all read.

import { api } from "/session.js";

const $ = (id) => document.getElementById(id);

let unread = 0;

export async function loadNotificationCount() {
  const page = await api.call("GET", "/api/notifications?unread=true&limit=1");
  unread = page.unreadCount;
  renderNotifications();
}

// notification:new
export function notificationArrived() {
  unread += 1;
  renderNotifications();
}

function renderNotifications() {
  $("notification-count").textContent = String(unread);
  $("notifications").title = `${unread} unread; press to mark them all read`;
}

$("notifications").addEventListener("click", async () => {
  const marked = await api.call("POST", "/api/notifications/read", { all: true });
  unread = marked.unreadCount;
  renderNotifications();
});
