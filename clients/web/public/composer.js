// The composer: Enter sends (Shift+Enter is a new line), with an image uploaded first if one is
// chosen. Messages go out one after another in the order written, each resent with the same
// clientMessageId until acknowledged, as docs/realtime.md tells clients.

import { uploadImage } from "/media.js";
import { call, connected, nextConnect } from "/realtime.js";
import { state } from "/store.js";
import { receive } from "/thread.js";
import { stopTyping } from "/typing.js";

const $ = (id) => document.getElementById(id);
const RESEND_PAUSE_MS = 500;

let sending = Promise.resolve(); // the last message's send

async function sendMessage(conversationId, content, attachments = []) {
  const payload = { conversationId, content, clientMessageId: crypto.randomUUID(), attachments };
  for (;;) {
    if (!connected()) await nextConnect();
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
  sending = sending.then(async () => {
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
