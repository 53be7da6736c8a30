/**
 * One load-generating client process (forked by bench/lib/pool.ts). It holds many `ws`
 * sockets, sends open-loop on the ones it is told to, and timestamps what comes back:
 *
 * - ack:  send → `sent` on the sending socket
 * - conv: send → `message` on every other conversation socket (the sender's own echo is skipped)
 * - sync: send → `message` on device sockets (/v1/sync) of users other than the sender
 *
 * The send time travels in the message content (`stage|t|socketKey|`), so a receiving
 * process computes the latency itself (all processes read the same clock, util.now()).
 * Latencies are measured from the *scheduled* send time (open loop: a client that falls
 * behind does not hide server queueing; its lag is reported separately).
 */
import WebSocket from "ws";
import type { ClientReply, ClientRequest, LoadPlan, SocketSpec, StageData } from "./protocol.ts";
import { now } from "./util.ts";

interface Sock {
  spec: SocketSpec;
  ws: WebSocket;
  open: boolean;
  seq: number;
}

interface Stage {
  ack: number[];
  conv: number[];
  sync: number[];
  errors: Record<string, number>;
  sent: number;
  firstSend: number;
  lastRecv: number;
  lagMax: number;
  lagSum: number;
  /** client_message_id → scheduled send time, for acks still owed. */
  pending: Map<string, number>;
}

const sockets = new Map<string, Sock>();
const stages = new Map<string, Stage>();
/** Stages already handed over: what still arrives for them is too late to count. */
const collected = new Set<string>();

function stage(name: string): Stage {
  let s = stages.get(name);
  if (!s) {
    s = { ack: [], conv: [], sync: [], errors: {}, sent: 0, firstSend: Infinity, lastRecv: 0, lagMax: 0, lagSum: 0, pending: new Map() };
    stages.set(name, s);
  }
  return s;
}

const countError = (s: Stage, code: string) => {
  s.errors[code] = (s.errors[code] ?? 0) + 1;
};

function onFrame(sock: Sock, data: WebSocket.RawData): void {
  const t = now();
  let frame: { type?: string; client_message_id?: string; message?: { content?: string; sender_id?: string }; code?: string; ref?: string | null };
  try {
    frame = JSON.parse(data.toString());
  } catch {
    return;
  }
  switch (frame.type) {
    case "sent": {
      const cmid = frame.client_message_id ?? "";
      const s = stages.get(cmid.slice(0, cmid.indexOf("~")));
      const at = s?.pending.get(cmid);
      if (s && at !== undefined) {
        s.pending.delete(cmid);
        s.ack.push(t - at);
        if (t > s.lastRecv) s.lastRecv = t;
      }
      return;
    }
    case "message": {
      const content = frame.message?.content;
      if (typeof content !== "string") return;
      const [name, sentAt, from] = content.split("|", 3);
      if (!name || sentAt === undefined || from === undefined || collected.has(name)) return;
      const s = stage(name);
      if (sock.spec.kind === "conv") {
        if (from === sock.spec.key) return; // the sender's own echo
        s.conv.push(t - Number(sentAt));
      } else {
        if (frame.message?.sender_id === sock.spec.user) return; // the sender's own devices
        s.sync.push(t - Number(sentAt));
      }
      if (t > s.lastRecv) s.lastRecv = t;
      return;
    }
    case "error": {
      const ref = frame.ref ?? "";
      const s = ref ? stages.get(ref.slice(0, ref.indexOf("~"))) : undefined;
      if (s) {
        s.pending.delete(ref);
        countError(s, frame.code ?? "error");
      } else {
        countError(stage("_unattributed"), frame.code ?? "error");
      }
      return;
    }
    default:
      return; // presence, receipts, conversation events, pong
  }
}

function openOne(spec: SocketSpec, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const ws = new WebSocket(spec.url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const sock: Sock = { spec, ws, open: false, seq: 0 };
    let settled = false;
    const settle = (err: string | null) => {
      if (settled) return;
      settled = true;
      resolve(err);
    };
    ws.on("open", () => {
      sock.open = true;
      sockets.set(spec.key, sock);
      settle(null);
    });
    ws.on("message", (data) => onFrame(sock, data));
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => settle(`HTTP ${res.statusCode} ${body.slice(0, 200)}`));
    });
    ws.on("error", (err) => settle(err.message));
    ws.on("close", (code) => {
      sock.open = false;
      if (sockets.get(spec.key) === sock) sockets.delete(spec.key);
      settle(`closed ${code}`);
    });
  });
}

async function open(specs: SocketSpec[], width: number, timeoutMs: number): Promise<ClientReply> {
  let next = 0;
  let failed = 0;
  const errors: string[] = [];
  const lanes = Array.from({ length: Math.min(width, specs.length) }, async () => {
    while (next < specs.length) {
      const spec = specs[next++]!;
      const err = await openOne(spec, timeoutMs);
      if (err) {
        failed += 1;
        if (errors.length < 5) errors.push(`${spec.key}: ${err}`);
      }
    }
  });
  await Promise.all(lanes);
  return { ok: true, opened: specs.length - failed, failed, errors };
}

async function close(keys: string[] | undefined): Promise<ClientReply> {
  const targets = keys ? keys.map((k) => sockets.get(k)).filter((s): s is Sock => !!s) : [...sockets.values()];
  await Promise.all(
    targets.map(
      (s) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            s.ws.terminate();
            resolve();
          }, 3000);
          s.ws.once("close", () => {
            clearTimeout(timer);
            resolve();
          });
          try {
            s.ws.close(1000, "bench done");
          } catch {
            clearTimeout(timer);
            resolve();
          }
        }),
    ),
  );
  for (const s of targets) sockets.delete(s.spec.key);
  return { ok: true, closed: targets.length };
}

/**
 * Sends `plan.count` messages at `plan.rate` per second from `plan.startAt`, round-robin
 * over the sender sockets, then waits for the outstanding acks (at most `plan.drainMs`).
 * Stops early if an ack has been owed longer than `plan.abortAfterMs` (the server is
 * saturated; going on would only build a backlog that disturbs the next step).
 */
function load(plan: LoadPlan): Promise<ClientReply> {
  const s = stage(plan.stage);
  const senders = plan.senders.map((k) => sockets.get(k)).filter((x): x is Sock => !!x);
  if (senders.length === 0) return Promise.resolve({ ok: false, error: "no open sender sockets here" });
  const interval = 1000 / plan.rate;
  const pad = "x".repeat(Math.max(0, plan.contentBytes - 40));
  let i = 0;
  let aborted = false;
  return new Promise((resolve) => {
    const finish = () => {
      const deadline = now() + plan.drainMs;
      const wait = () => {
        if (s.pending.size === 0 || now() >= deadline) {
          resolve({ ok: true, sent: s.sent, pending: s.pending.size, aborted, lagMax: s.lagMax, lagMean: s.sent ? s.lagSum / s.sent : 0 });
          return;
        }
        setTimeout(wait, 20);
      };
      wait();
    };
    const tick = () => {
      const t0 = now();
      while (i < plan.count && plan.startAt + i * interval <= t0) {
        const at = plan.startAt + i * interval;
        const sock = senders[i % senders.length]!;
        i += 1;
        const cmid = `${plan.stage}~${sock.spec.key}~${sock.seq++}`;
        const content = `${plan.stage}|${at}|${sock.spec.key}|${pad}`;
        if (!sock.open) {
          countError(s, "socket_closed");
          continue;
        }
        s.pending.set(cmid, at);
        s.sent += 1;
        if (at < s.firstSend) s.firstSend = at;
        sock.ws.send(`{"type":"send","client_message_id":"${cmid}","kind":"text","content":${JSON.stringify(content)}}`);
        const lag = now() - at;
        s.lagSum += lag;
        if (lag > s.lagMax) s.lagMax = lag;
      }
      if (plan.abortAfterMs > 0 && s.pending.size > 0) {
        const oldest = s.pending.values().next().value!;
        if (now() - oldest > plan.abortAfterMs) aborted = true;
      }
      if (i >= plan.count || aborted) return finish();
      const due = plan.startAt + i * interval - now();
      setTimeout(tick, Math.max(0, Math.min(due, 5)));
    };
    setTimeout(tick, Math.max(0, plan.startAt - now()));
  });
}

function counts(name: string): ClientReply {
  const s = stages.get(name);
  return { ok: true, ack: s?.ack.length ?? 0, conv: s?.conv.length ?? 0, sync: s?.sync.length ?? 0, sent: s?.sent ?? 0 };
}

function collect(name: string): ClientReply {
  const s = stages.get(name);
  stages.delete(name);
  collected.add(name);
  const data: StageData = {
    ack: Float64Array.from(s?.ack ?? []),
    conv: Float64Array.from(s?.conv ?? []),
    sync: Float64Array.from(s?.sync ?? []),
    errors: s?.errors ?? {},
    sent: s?.sent ?? 0,
    unacked: s?.pending.size ?? 0,
    firstSend: s?.firstSend ?? Infinity,
    lastRecv: s?.lastRecv ?? 0,
    lagMax: s?.lagMax ?? 0,
    lagMean: s && s.sent ? s.lagSum / s.sent : 0,
  };
  const stray = stages.get("_unattributed");
  if (stray) {
    for (const [k, v] of Object.entries(stray.errors)) data.errors[`unattributed:${k}`] = v;
    stages.delete("_unattributed");
  }
  return { ok: true, data };
}

async function handle(req: ClientRequest): Promise<ClientReply> {
  switch (req.cmd) {
    case "open":
      return open(req.sockets, req.width, req.timeoutMs);
    case "close":
      return close(req.keys);
    case "load":
      return load(req.plan);
    case "counts":
      return counts(req.stage);
    case "collect":
      return collect(req.stage);
    case "stat":
      return { ok: true, open: [...sockets.values()].filter((s) => s.open).length };
    case "exit":
      await close(undefined);
      setImmediate(() => process.exit(0));
      return { ok: true };
  }
}

process.on("message", (msg: { id: number; req: ClientRequest }) => {
  handle(msg.req).then(
    (reply) => process.send!({ id: msg.id, reply }),
    (err: unknown) => process.send!({ id: msg.id, reply: { ok: false, error: String(err) } }),
  );
});
// The orchestrator went away: do not linger.
process.on("disconnect", () => process.exit(0));
