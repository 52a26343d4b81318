// The seed reference of bench/gateway/run.py: one Node process built the way the seed describes,
// socket.io 4.8 + Postgres (node-postgres) + RabbitMQ (amqplib), on the same socket contract as
// node_server.mjs.
//
//   node seed_server.mjs <port> <postgres url> <amqp url>
//
// (or DATABASE_URL and RABBITMQ_URL in the environment). run.py gives it a database and a vhost
// of its own and removes both afterwards. On start it creates its schema (conversations,
// messages), declares the durable topic exchange `chat` and a durable queue `notifications`
// bound to `message.created` that nobody consumes (as the seed's notifications queue would be
// while no worker runs), prints "listening" on stdout once it accepts connections, and exits
// when stdin closes.
//
// Every socket joins one room; the sender id is its auth token. `message:send {conversationId,
// content, clientMessageId}`, in one transaction on a pg Pool (10 connections, opened at start
// and kept): lock the conversation row (created if missing) with SELECT ... FOR UPDATE; if
// (sender, clientMessageId) is stored, the stored message is acked (and neither emitted nor
// published again); otherwise the message is inserted with seq = last_seq + 1 and last_seq
// updated; COMMIT. After the commit: ack `{ok: true, message}`, emit `message:received` (shaped
// as node_server.mjs builds it) to the room, publish a persistent `message.created` JSON message
// to `chat` on a confirm channel (the ack does not wait for the broker's confirm; a nack or a
// failed publish is counted and logged). `conversation:join` acks `{ok: true}`.
// permessage-deflate is off, as in the gateway. On exit, the publish counts go to stderr.

import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import amqplib from "amqplib";
import pg from "pg";
import { Server } from "socket.io";

const port = Number(process.argv[2]);
const databaseUrl = process.argv[3] ?? process.env.DATABASE_URL;
const amqpUrl = process.argv[4] ?? process.env.RABBITMQ_URL;
if (!port || !databaseUrl || !amqpUrl) {
  process.stderr.write("usage: node seed_server.mjs <port> <postgres url> <amqp url>\n");
  process.exit(2);
}
const EXCHANGE = "chat";
const QUEUE = "notifications";
const ROUTING_KEY = "message.created";
const ROOM = "conversation";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS conversations (
  id text PRIMARY KEY,
  last_seq bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
  id uuid PRIMARY KEY,
  conversation_id text NOT NULL,
  seq bigint NOT NULL,
  sender_id text NOT NULL,
  client_message_id text NOT NULL,
  content text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (conversation_id, seq),
  UNIQUE (sender_id, client_message_id)
);`;

const fail = (what, error) => {
  process.stderr.write(`seed_server.mjs: ${what}: ${error?.stack ?? error}\n`);
  process.exit(1);
};

// All 10 connections opened now and kept (no idle timeout): their Postgres backends exist
// before run.py first samples the shared servers' CPU, which counts only processes it saw then.
const POOL_SIZE = 10;
const pool = new pg.Pool({ connectionString: databaseUrl, max: POOL_SIZE, idleTimeoutMillis: 0 });
pool.on("error", (error) => fail("idle Postgres client", error));
await pool.query(SCHEMA).catch((error) => fail("schema", error));
const warm = await Promise.all(Array.from({ length: POOL_SIZE }, () => pool.connect()));
for (const client of warm) client.release();

const connection = await amqplib.connect(amqpUrl).catch((error) => fail("amqp connect", error));
connection.on("error", (error) => fail("amqp connection", error));
const channel = await connection.createConfirmChannel();
channel.on("error", (error) => fail("amqp channel", error));
await channel.assertExchange(EXCHANGE, "topic", { durable: true });
await channel.assertQueue(QUEUE, { durable: true });
await channel.bindQueue(QUEUE, EXCHANGE, ROUTING_KEY);

const counts = { published: 0, confirmed: 0, nacked: 0, failed: 0 };

function shape(row) {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    seq: Number(row.seq),
    senderId: row.sender_id,
    clientMessageId: row.client_message_id,
    content: row.content,
    attachments: [],
    createdAt: row.created_at.toISOString(),
    editedAt: null,
    deletedAt: null,
  };
}

const COLUMNS = "id, conversation_id, seq, sender_id, client_message_id, content, created_at";

// One transaction: the stored message and whether this call created it.
async function store(conversationId, senderId, clientMessageId, content) {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query(
      "INSERT INTO conversations (id) VALUES ($1) ON CONFLICT (id) DO NOTHING",
      [conversationId],
    );
    const locked = await client.query(
      "SELECT last_seq FROM conversations WHERE id = $1 FOR UPDATE",
      [conversationId],
    );
    const known = await client.query(
      `SELECT ${COLUMNS} FROM messages WHERE sender_id = $1 AND client_message_id = $2`,
      [senderId, clientMessageId],
    );
    if (known.rows.length) {
      await client.query("COMMIT");
      client.release();
      return { row: known.rows[0], created: false };
    }
    const seq = Number(locked.rows[0].last_seq) + 1;
    const inserted = await client.query(
      `INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, content)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
      [randomUUID(), conversationId, seq, senderId, clientMessageId, content],
    );
    await client.query("UPDATE conversations SET last_seq = $2 WHERE id = $1", [
      conversationId,
      seq,
    ]);
    await client.query("COMMIT");
    client.release();
    return { row: inserted.rows[0], created: true };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    client.release(error);
    throw error;
  }
}

function publish(message) {
  counts.published += 1;
  try {
    channel.publish(
      EXCHANGE,
      ROUTING_KEY,
      Buffer.from(JSON.stringify(message)),
      { persistent: true, contentType: "application/json", messageId: message.id },
      (error) => {
        if (error) {
          counts.nacked += 1;
          if (counts.nacked <= 3) process.stderr.write(`seed_server.mjs: nacked ${message.id}\n`);
        } else {
          counts.confirmed += 1;
        }
      },
    );
  } catch (error) {
    counts.failed += 1;
    if (counts.failed <= 3) process.stderr.write(`seed_server.mjs: publish: ${error}\n`);
  }
}

const httpServer = createServer();
const io = new Server(httpServer, { perMessageDeflate: false, serveClient: false });

io.on("connection", (socket) => {
  const senderId = String(socket.handshake.auth?.token ?? "anonymous");
  socket.join(ROOM);
  socket.on("message:send", async (payload, ack) => {
    const reply = typeof ack === "function" ? ack : () => {};
    const { conversationId, content, clientMessageId } = payload ?? {};
    if (typeof conversationId !== "string" || typeof clientMessageId !== "string") {
      reply({ ok: false, error: { code: "invalid", message: "conversationId, clientMessageId" } });
      return;
    }
    let stored;
    try {
      stored = await store(conversationId, senderId, clientMessageId, String(content ?? ""));
    } catch (error) {
      process.stderr.write(`seed_server.mjs: message:send: ${error.message}\n`);
      reply({ ok: false, error: { code: "internal", message: error.message } });
      return;
    }
    const message = shape(stored.row);
    reply({ ok: true, message });
    if (!stored.created) return; // a retry: already broadcast and published
    io.to(ROOM).emit("message:received", message);
    publish(message);
  });
  socket.on("conversation:join", (payload, ack) => {
    if (typeof ack === "function") ack({ ok: true }); // in the one room since connecting
  });
});

httpServer.listen(port, "127.0.0.1", () => process.stdout.write("listening\n"));
process.stdin.on("end", async () => {
  setTimeout(() => process.exit(0), 3000).unref();
  try {
    await channel.waitForConfirms();
  } catch {}
  process.stderr.write(`seed_server.mjs: ${JSON.stringify(counts)}\n`);
  process.exit(counts.nacked || counts.failed ? 1 : 0);
});
process.stdin.resume();
