// The official socket.io-client against the fleet's public origin: the seed events, end to end.
//
//   node seed_events.mjs <publicUrl> --token-a <token> --token-b <token> --conversation <id>
//
// (or TOKEN_A, TOKEN_B, CONVERSATION_ID in the environment). A and B are the two participants
// of a direct conversation. A connects twice: once WebSocket-only, once with the client's
// default transports (long-polling, then the upgrade to WebSocket). The script prints ONE JSON
// line with what it observed and exits 0, or prints {"error", "step", "observed"} and exits 1
// (at the latest after the global timeout). tests/e2e/tests/test_e2e_node_client.py asserts
// on the observations; this script only waits for them.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { io } from "socket.io-client";

const GLOBAL_TIMEOUT_MS = 20_000;
const ACK_TIMEOUT_MS = 10_000;
const SETTLE_MS = 500; // after the last awaited event: anything duplicated arrives by then

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "token-a": { type: "string", default: process.env.TOKEN_A },
    "token-b": { type: "string", default: process.env.TOKEN_B },
    conversation: { type: "string", default: process.env.CONVERSATION_ID },
  },
});
const url = positionals[0] ?? process.env.PUBLIC_URL;
const tokenA = values["token-a"];
const tokenB = values["token-b"];
const conversationId = values.conversation;
if (!url || !tokenA || !tokenB || !conversationId) {
  process.stderr.write(
    "usage: node seed_events.mjs <publicUrl> --token-a <token> --token-b <token> " +
      "--conversation <id>\n",
  );
  process.exit(2);
}

const clientVersion = JSON.parse(
  readFileSync(new URL("./node_modules/socket.io-client/package.json", import.meta.url), "utf8"),
).version;

const RECORDED = [
  "message:received",
  "user:typing",
  "user:stopped-typing",
  "user:joined",
  "user:left",
];

let step = "start";
const sockets = {};
const events = {}; // socket name -> event name -> [payload, ...]
const transports = {}; // socket name -> [transport name, ...]
const seedRun = `${process.pid}-${Date.now()}`;
const observed = { clientVersion, url, seedRun, transports, events };

let finished = false;

function finish(code, line) {
  if (finished) return;
  finished = true;
  clearTimeout(deadline);
  for (const socket of Object.values(sockets)) socket.disconnect();
  process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(code));
}

function fail(error) {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`seed_events: ${step}: ${message}\n`);
  finish(1, { error: message, step, observed });
}

const deadline = setTimeout(
  () => fail(new Error(`global timeout of ${GLOBAL_TIMEOUT_MS / 1000} s`)),
  GLOBAL_TIMEOUT_MS,
);
process.on("unhandledRejection", fail);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (the global timeout bounds it) until `condition()` holds. */
async function until(label, condition) {
  step = label;
  while (!condition()) await sleep(20);
}

function connect(name, token, options) {
  const socket = io(url, {
    path: "/socket.io",
    auth: { token },
    query: { seedRun }, // marks this run's requests in nginx's access log
    reconnection: false,
    ...options,
  });
  sockets[name] = socket;
  events[name] = Object.fromEntries(RECORDED.map((event) => [event, []]));
  for (const event of RECORDED) socket.on(event, (payload) => events[name][event].push(payload));
  // Every transport the connection used: the one it opened with, then each upgrade.
  socket.io.once("open", () => {
    const engine = socket.io.engine;
    transports[name] = [engine.transport.name];
    engine.on("upgrade", (transport) => transports[name].push(transport.name));
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) =>
      reject(new Error(`${name} refused: ${error.message}`)),
    );
  });
}

async function ack(label, socket, event, payload) {
  step = label;
  return socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
}

const received = (name, id) => events[name]["message:received"].some((m) => m.id === id);

async function main() {
  step = "connect a, b (websocket) and a2 (default transports)";
  const [a, b, a2] = await Promise.all([
    connect("a", tokenA, { transports: ["websocket"] }),
    connect("b", tokenB, { transports: ["websocket"] }),
    connect("a2", tokenA, {}), // the client's defaults: polling first, then the upgrade
  ]);
  await until("a2 upgrade to websocket", () => a2.io.engine.transport.name === "websocket");

  const send = {
    conversationId,
    content: "hello from socket.io-client",
    clientMessageId: `node-${Date.now()}`,
  };
  observed.sent = send;
  observed.ack = await ack("message:send", a, "message:send", send);
  const id = observed.ack?.message?.id;
  if (!id) throw new Error(`message:send ack without a message: ${JSON.stringify(observed.ack)}`);
  await until("message:received by b and a2", () => received("b", id) && received("a2", id));

  observed.acks = {};
  observed.acks.typingStart = await ack("typing:start", a, "typing:start", { conversationId });
  await until("user:typing at b", () => events.b["user:typing"].length > 0);
  observed.acks.typingStop = await ack("typing:stop", a, "typing:stop", { conversationId });
  await until("user:stopped-typing at b", () => events.b["user:stopped-typing"].length > 0);

  observed.acks.join = await ack("conversation:join", b, "conversation:join", { conversationId });
  await until("user:joined at a", () => events.a["user:joined"].length > 0);
  observed.acks.leave = await ack("conversation:leave", b, "conversation:leave", {
    conversationId,
  });
  await until("user:left at a", () => events.a["user:left"].length > 0);

  observed.invalid = await ack("malformed message:send", a, "message:send", {
    conversationId: 5,
  });
  observed.sync = await ack("sync", a, "sync", { since: { [conversationId]: 0 } });

  step = "settle";
  await sleep(SETTLE_MS);
  finish(0, observed);
}

main().catch(fail);
