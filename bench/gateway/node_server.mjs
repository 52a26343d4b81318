// The bare Node reference of bench/gateway/run.py: a socket.io 4.8 server doing only the room
// broadcast the gateway does for `message:send` (no auth check, no storage, no broker).
//
//   node node_server.mjs <port>
//
// Every socket joins one room; `message:send {conversationId, content, clientMessageId}` emits
// `message:received` (a message object shaped like the fleet's) to that room and acks
// `{ok: true, message}`; `conversation:join` acks `{ok: true}`. permessage-deflate is off
// (socket.io's default), as in the gateway.
// Prints "listening" on stdout once it accepts connections; exits when stdin closes.

import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2]);
const httpServer = createServer();
const io = new Server(httpServer, { perMessageDeflate: false, serveClient: false });
const ROOM = "conversation";
let seq = 0;

io.on("connection", (socket) => {
  const senderId = String(socket.handshake.auth?.token ?? "anonymous");
  socket.join(ROOM);
  socket.on("message:send", (payload, ack) => {
    seq += 1;
    const message = {
      id: randomUUID(),
      conversationId: payload.conversationId,
      seq,
      senderId,
      clientMessageId: payload.clientMessageId,
      content: payload.content,
      attachments: [],
      createdAt: new Date().toISOString(),
      editedAt: null,
      deletedAt: null,
    };
    io.to(ROOM).emit("message:received", message);
    if (typeof ack === "function") ack({ ok: true, message });
  });
  socket.on("conversation:join", (payload, ack) => {
    if (typeof ack === "function") ack({ ok: true }); // in the one room since connecting
  });
});

httpServer.listen(port, "127.0.0.1", () => process.stdout.write("listening\n"));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
