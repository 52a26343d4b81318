// The Socket.IO connection (docs/realtime.md): opened with the session's access token, a fresh
// token after a refused one, the offline banner while it is away, and acks with a timeout.
// Which module handles which event is app.js's to say (connect's handlers).

import { io } from "/vendor/socket.io.esm.min.js";
import { api } from "/session.js";

const $ = (id) => document.getElementById(id);
const ACK_TIMEOUT_MS = 10_000;

let socket = null;

export function connect(handlers) {
  const current = io({ transports: ["websocket"], auth: (send) => send({ token: api.token }) });
  socket = current;
  current.on("connect", () => { $("offline").hidden = true; });
  current.on("disconnect", () => { $("offline").hidden = false; });
  current.on("connect_error", async (error) => {
    $("offline").hidden = false;
    if (/token/i.test(error.message)) await api.refresh().catch(() => {}); // then it retries
  });
  for (const [event, handler] of Object.entries(handlers)) current.on(event, handler);
}

export function disconnect() {
  socket?.disconnect();
  socket = null;
}

export function connected() {
  return Boolean(socket?.connected);
}

// Resolves at the socket's next connect.
export function nextConnect() {
  return new Promise((resolve) => socket.once("connect", resolve));
}

// An event whose ack is not waited for.
export function emit(event, payload) {
  socket?.emit(event, payload, () => {});
}

// An event whose ack is the answer; rejects when none comes in time.
export function call(event, payload) {
  return socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
}

window.addEventListener("offline", () => { $("offline").hidden = false; });
