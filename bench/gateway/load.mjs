// The load generator of bench/gateway/run.py: one group conversation, R receivers and S senders,
// all on socket.io-client with transports ["websocket"], the same code for every target.
//
//   node load.mjs --url <origin> --tokens <file.json> --conversation <id>
//                 [--duration 10] [--inflight 4] [--grace 5] [--rate 0] [--join]
//
// <file.json> is {"senders": [token, ...], "receivers": [token, ...]} (sent as auth.token).
// Every sender keeps --inflight `message:send {conversationId, content, clientMessageId}` acks
// outstanding (--rate > 0: at most that many sends a second each) for --duration seconds; every
// receiver records `message:received` by clientMessageId. A send acked {ok: true} is expected
// once at every receiver; after the last ack, --grace seconds at most for the rest to arrive.
// Latency: receive time minus the send's emit time, on this process's clock. --join: every
// receiver opens the conversation (`conversation:join`, acked ok) before sending starts.
//
// stdout, one JSON object per line: {"phase": "connected"} once every socket is connected,
// {"phase": "start"} when sending starts, {"phase": "end"} once all arrived (or grace is over),
// then the result (`"phase": "result"`). Errors go to stderr with exit code 1.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { io } from "socket.io-client";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    tokens: { type: "string" },
    conversation: { type: "string" },
    duration: { type: "string", default: "10" },
    inflight: { type: "string", default: "4" },
    grace: { type: "string", default: "5" },
    rate: { type: "string", default: "0" },
    "content-bytes": { type: "string", default: "100" },
    "connect-batch": { type: "string", default: "20" },
    join: { type: "boolean", default: false },
  },
});
const url = values.url;
const conversationId = values.conversation;
const tokens = JSON.parse(readFileSync(values.tokens, "utf8"));
const durationMs = Number(values.duration) * 1000;
const inflight = Number(values.inflight);
const graceMs = Number(values.grace) * 1000;
const rate = Number(values.rate);
const content = "x".repeat(Number(values["content-bytes"]));
const connectBatch = Number(values["connect-batch"]);
const ACK_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 20_000;

const say = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const fail = (message) => {
  process.stderr.write(`load.mjs: ${message}\n`);
  process.exit(1);
};
setTimeout(
  () => fail("global timeout"),
  durationMs + graceMs + ACK_TIMEOUT_MS + 4 * CONNECT_TIMEOUT_MS,
).unref();

const sentAt = new Map(); // clientMessageId -> emit time (ms, performance.now)
const expected = new Set(); // clientMessageIds acked ok
const seen = new Map(); // clientMessageId -> receivers that got it (count)
const latencies = [];
let duplicates = 0;
let unexpected = 0;
let lastDelivery = 0;
const perReceiver = []; // per receiver: Set of clientMessageIds

function connect(token, index, receiver) {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ["websocket"],
      auth: { token },
      reconnection: false,
      timeout: CONNECT_TIMEOUT_MS,
      forceNew: true,
    });
    if (receiver) {
      const got = new Set();
      perReceiver.push(got);
      socket.on("message:received", (message) => {
        const now = performance.now();
        const id = message.clientMessageId ?? message.client_message_id;
        if (got.has(id)) {
          duplicates += 1;
          return;
        }
        got.add(id);
        const start = sentAt.get(id);
        if (start === undefined) {
          unexpected += 1;
          return;
        }
        latencies.push(now - start);
        seen.set(id, (seen.get(id) ?? 0) + 1);
        lastDelivery = now;
      });
    }
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) => reject(new Error(`socket ${index}: ${error.message}`)));
  });
}

async function connectAll(list, receiver) {
  const sockets = [];
  for (let i = 0; i < list.length; i += connectBatch) {
    const batch = list.slice(i, i + connectBatch).map((t, j) => connect(t, i + j, receiver));
    sockets.push(...(await Promise.all(batch)));
  }
  return sockets;
}

const connectStart = performance.now();
const receivers = await connectAll(tokens.receivers, true).catch((e) => fail(e.message));
const senders = await connectAll(tokens.senders, false).catch((e) => fail(e.message));
const connectSeconds = (performance.now() - connectStart) / 1000;
if (values.join) {
  const answers = await Promise.all(
    receivers.map((socket) =>
      socket.timeout(ACK_TIMEOUT_MS).emitWithAck("conversation:join", { conversationId }),
    ),
  ).catch((e) => fail(`conversation:join: ${e.message}`));
  const refused = answers.filter((answer) => !answer?.ok);
  if (refused.length) fail(`conversation:join refused: ${JSON.stringify(refused[0])}`);
}
await sleep(500); // room joins done on connect; let the servers settle
say({ phase: "connected" });
await sleep(500); // the orchestrator samples RSS with every socket connected

let acked = 0;
let rateLimited = 0;
let errors = 0;
let timeouts = 0;
let lastAck = 0;
let sequence = 0;
const ackLatencies = [];

async function sendOnce(senderIndex, socket) {
  const id = `b-${process.pid}-${senderIndex}-${sequence++}`;
  for (;;) {
    const start = performance.now();
    sentAt.set(id, start);
    let answer;
    try {
      answer = await socket
        .timeout(ACK_TIMEOUT_MS)
        .emitWithAck("message:send", { conversationId, content, clientMessageId: id });
    } catch {
      timeouts += 1;
      return;
    }
    const now = performance.now();
    if (answer?.ok) {
      acked += 1;
      expected.add(id);
      ackLatencies.push(now - start);
      lastAck = now;
      return;
    }
    if (answer?.error?.code === "rate_limited") {
      rateLimited += 1;
      await sleep(100);
      continue; // the same clientMessageId again, timed from the new emit
    }
    errors += 1;
    if (errors <= 3) process.stderr.write(`load.mjs: error ack ${JSON.stringify(answer)}\n`);
    return;
  }
}

say({ phase: "start" });
const cpuStart = process.cpuUsage();
const sendStart = performance.now();
const stopAt = sendStart + durationMs;

async function lane(senderIndex, socket, laneIndex) {
  const gapMs = rate > 0 ? (1000 * inflight) / rate : 0; // per lane: K lanes share the rate
  let next = sendStart + (rate > 0 ? (laneIndex * 1000) / rate : 0);
  while (performance.now() < stopAt) {
    if (gapMs > 0) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      if (performance.now() >= stopAt) break;
      next += gapMs;
    }
    await sendOnce(senderIndex, socket);
  }
}

const lanes = [];
senders.forEach((socket, s) => {
  for (let k = 0; k < inflight; k += 1) lanes.push(lane(s, socket, k));
});
await Promise.all(lanes);
const sendEnd = performance.now();
const want = expected.size * receivers.length;
const complete = () => {
  let got = 0;
  for (const id of expected) got += seen.get(id) ?? 0;
  return got;
};
const graceEnd = performance.now() + graceMs;
while (complete() < want && performance.now() < graceEnd) await sleep(20);
const end = performance.now();
const cpu = process.cpuUsage(cpuStart);
say({ phase: "end" });

const delivered = complete();
latencies.sort((a, b) => a - b);
ackLatencies.sort((a, b) => a - b);
const pct = (sorted, p) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null;
const sendSeconds = (Math.max(lastAck, sendStart) - sendStart) / 1000;
const deliverSeconds = (Math.max(lastDelivery, sendStart) - sendStart) / 1000;
say({
  phase: "result",
  receivers: receivers.length,
  senders: senders.length,
  inflight,
  rate,
  connectSeconds,
  sends: acked,
  sendSeconds,
  sendsPerSecond: sendSeconds > 0 ? acked / sendSeconds : 0,
  deliveries: delivered,
  deliverSeconds,
  deliveriesPerSecond: deliverSeconds > 0 ? delivered / deliverSeconds : 0,
  latencyP50Ms: pct(latencies, 50),
  latencyP99Ms: pct(latencies, 99),
  ackP50Ms: pct(ackLatencies, 50),
  ackP99Ms: pct(ackLatencies, 99),
  lost: want - delivered,
  duplicates,
  unexpected,
  rateLimited,
  errors,
  timeouts,
  windowSeconds: (end - sendStart) / 1000,
  sendPhaseSeconds: (sendEnd - sendStart) / 1000,
  loadCpuSeconds: (cpu.user + cpu.system) / 1e6,
});
for (const socket of [...receivers, ...senders]) socket.disconnect();
process.exit(0);
