/**
 * The chaos run: N clients (one user, one device each) in direct conversations and a few
 * groups send M messages each, over HTTP and conversation sockets, while the server
 * process group is killed and restarted K times on the same persisted state. Clients
 * retry an unacknowledged send with the same client_message_id until it is acked, and
 * keep a device socket open on /v1/sync, reconnecting with their last cursor. At the end
 * every conversation's history is read by two members and everything goes to the checker.
 *
 * Used by bench/chaos/run.ts (`npm run chaos`) and test/e2e/chaos.test.ts.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Api, type Session, type Socket } from "../../test/e2e/client";
import { check, type Ack, type Attempt, type CheckResult, type ConversationInfo, type Delivery, type StoredMessage } from "./checker";
import { Rng } from "../lib/prng";
import { extraArgsOf, startServer, type ChaosServer } from "./server";

export type KillSignal = "SIGKILL" | "SIGTERM";

export interface ChaosOptions {
  clients: number;
  /** Messages each client sends. */
  messages: number;
  restarts: number;
  /**
   * One more kill right after the last ack, not counted in `restarts`: nothing but the objects'
   * own recovery (alarms) can then finish the fan-out, and the devices are waited on before any
   * request touches a conversation.
   */
  finalKill: boolean;
  /**
   * "owed": each restart, once due, waits (up to 3 s) for a moment when some acked message has
   * not yet reached every member's device, and kills then: a crash between the ack and the
   * fan-out. "any": kill when due, whatever is in flight.
   */
  killWhen: "owed" | "any";
  signal: KillSignal;
  seed: number;
  /** Members per group (the clients are also all in one group when there are more of them than this). */
  groupSize: number;
  /** Share of send attempts made over HTTP; the rest go over the conversation socket. */
  httpShare: number;
  /** Device sockets the clients themselves drop (terminate) at random moments, besides the restarts. */
  drops: number;
  /** SEND_RATE_PER_MINUTE for the run (`--var`); 0 leaves the configured limit alone. */
  sendRate: number;
  /** How long a send over the conversation socket waits for its `sent` before retrying. */
  sendTimeoutMs: number;
  /** A client gives a message up (unacked) after retrying it this long. */
  giveUpMs: number;
  /** After the last restart: how long every device may take to receive every stored message. */
  settleMs: number;
  /** Keep the state directory and server log even when the run is clean. */
  keepState: boolean;
  progressEveryMs: number;
  onProgress?: (p: Progress) => void;
  /** Phase changes and restarts, one line each. */
  log?: (line: string) => void;
}

export const DEFAULTS: ChaosOptions = {
  clients: 20,
  messages: 500,
  restarts: 5,
  finalKill: true,
  killWhen: "owed",
  signal: "SIGKILL",
  seed: 1,
  groupSize: 5,
  httpShare: 0.5,
  drops: 10,
  sendRate: 1_000_000,
  sendTimeoutMs: 10_000,
  giveUpMs: 180_000,
  settleMs: 30_000,
  keepState: false,
  progressEveryMs: 1_000,
};

export interface Progress {
  elapsedMs: number;
  phase: "setup" | "send" | "settle" | "check" | "done";
  acked: number;
  total: number;
  attempts: number;
  retries: number;
  restartsDone: number;
  restarts: number;
  serverUp: boolean;
  deliveries: number;
  reconnects: number;
  /** During settle: (member, stored message) pairs not yet delivered. */
  undelivered?: number;
}

export interface RestartRecord {
  n: number;
  /** The final kill after the last ack (see ChaosOptions.finalKill). */
  final: boolean;
  signal: KillSignal;
  /** Since the start of the send phase. */
  atMs: number;
  ackedBefore: number;
  /** From the signal until the server answered its health check again. */
  downMs: number;
  /** (member, acked message) pairs not yet on the member's device when the signal went. */
  owedDeliveries: number;
}

export interface ChaosResult {
  ok: boolean;
  /** Why the run failed, beyond the checker's counts (unacked or rejected sends, a device that never caught up). */
  problems: string[];
  /** Worth knowing, not a failure: e.g. wrangler dev hot-reloaded the Worker (one more fault the run survived). */
  warnings: string[];
  options: Omit<ChaosOptions, "onProgress" | "log">;
  startedAt: string;
  durations: { setupMs: number; sendMs: number; settleMs: number; deliveryWaitMs: number; totalMs: number };
  restarts: RestartRecord[];
  counters: Counters;
  check: CheckResult;
  server: { baseUrl: string; persistDir: string; logFile: string; extraArgs: string[]; reloads: number; kept: boolean; logTail?: string };
  layout: { conversations: { id: string; label: string; members: string[] }[]; clients: { label: string; user_id: string }[] };
}

export interface Counters {
  attempts: number;
  retries: number;
  /** Outcomes of send attempts: HTTP status, `sent`, `ws:<error code>`, `net` (connection failed), `timeout`. */
  outcomes: Record<string, number>;
  /** Acks that were HTTP 200: the server already had the message (an earlier attempt's ack was lost). */
  repeats: number;
  /** Most attempts one message needed. */
  maxAttempts: number;
  rejected: number;
  gaveUp: number;
  deviceConnections: number;
  deviceReconnects: number;
  deviceRefusals: Record<string, number>;
  clientDrops: number;
  heartbeatKills: number;
  /** Acks whose message named another conversation, sender or client_message_id than the one sent. */
  ackMismatches: number;
  /** From a message's first attempt to its ack, in ms, retries included. */
  ackLatencyMs: { p50: number; p95: number; p99: number; max: number };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const jitter = (ms: number) => Math.round(ms * (0.5 + Math.random()));

interface Client {
  idx: number;
  label: string;
  session: Session;
  convs: string[];
  /** Transport choices. */
  rng: Rng;
  device: DeviceStream;
  channels: Map<string, ConvChannel>;
}

interface Planned {
  conversation_id: string;
  client_message_id: string;
  content: string;
  order: number;
}

type SendOutcome =
  | { kind: "ack"; tag: string; message: any }
  | { kind: "retry"; tag: string; waitMs?: number; clientError?: boolean }
  | { kind: "reject"; tag: string; body: string };

// ---- the device socket: records every message event, reconnects with its last cursor ----------

class DeviceStream {
  socket: Socket | null = null;
  lastCursor: string | undefined;
  connections = 0;
  readonly deliveries: Delivery[] = [];
  readonly conversationsSeen = new Set<string>();
  private processed = 0;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private lastFrameAt = 0;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly api: Api,
    private readonly session: Session,
    private readonly counters: Counters,
    private readonly onDelivery: (d: Delivery) => void,
  ) {}

  /** Connects (without `since`: the log starts now) and keeps reconnecting until stop(). */
  async start(): Promise<void> {
    this.loop = this.run();
    this.heartbeat = setInterval(() => this.beat(), 5_000);
    await this.untilConnected(0, 30_000);
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (!this.stopped) {
      let ws: Socket | null = null;
      try {
        ws = await this.api.openSocket("/sync", this.session.token, this.lastCursor === undefined ? {} : { since: this.lastCursor });
      } catch {
        ws = null;
      }
      if (this.stopped) {
        await ws?.close();
        return;
      }
      if (!ws || ws.status !== 101) {
        const why = ws ? (ws.status ? `http ${ws.status}` : "connect failed") : "threw";
        this.counters.deviceRefusals[why] = (this.counters.deviceRefusals[why] ?? 0) + 1;
        await sleep(jitter(backoff));
        backoff = Math.min(backoff * 2, 1_000);
        continue;
      }
      backoff = 100;
      this.connections++;
      this.counters.deviceConnections++;
      this.attach(ws);
      await ws.closed;
      this.drain();
      this.socket = null;
      if (!this.stopped) this.counters.deviceReconnects++;
    }
  }

  private attach(ws: Socket): void {
    this.socket = ws;
    this.processed = 0;
    this.lastFrameAt = Date.now();
    // Socket's own listener (registered first) has pushed the frame by the time this one runs.
    ws.ws.on("message", () => this.drain());
    this.drain();
  }

  private drain(): void {
    const ws = this.socket;
    if (!ws) return;
    while (this.processed < ws.frames.length) {
      const f = ws.frames[this.processed++];
      this.lastFrameAt = Date.now();
      if (f?.cursor !== undefined) this.lastCursor = String(f.cursor);
      if (f?.type === "message" && f.message) {
        const m = f.message;
        const d: Delivery = {
          user_id: this.session.user_id,
          conversation_id: m.conversation_id,
          seq: m.seq,
          message_id: m.message_id,
          sender_id: m.sender_id,
          client_message_id: m.client_message_id,
          content: m.content,
          connection: this.connections,
        };
        this.deliveries.push(d);
        this.onDelivery(d);
      } else if (f?.type === "conversation" && f.conversation) {
        this.conversationsSeen.add(f.conversation.conversation_id);
      }
    }
    // Frames are all recorded: let the socket forget them.
    if (this.processed > 1_000) {
      ws.frames.splice(0, this.processed);
      this.processed = 0;
    }
  }

  /** Pings; a socket silent for 20 s is presumed dead and dropped (then reconnected). */
  private beat(): void {
    const ws = this.socket;
    if (!ws || !ws.isOpen) return;
    if (Date.now() - this.lastFrameAt > 20_000) {
      this.counters.heartbeatKills++;
      ws.ws.terminate();
      return;
    }
    ws.send({ type: "ping" });
  }

  /** Resolves once the stream has made more than `n` connections and the latest is open. */
  async untilConnected(n: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(this.connections > n && this.socket?.isOpen)) {
      if (Date.now() > deadline) throw new Error(`device socket of ${this.session.handle} not connected within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  /** The client drops its own socket (no close handshake); the loop reconnects. */
  drop(): boolean {
    if (!this.socket?.isOpen) return false;
    this.socket.ws.terminate();
    return true;
  }

  /** Closes the socket cleanly and waits for the reconnect with the last cursor, and a ping round trip on it. */
  async cycle(timeoutMs: number): Promise<void> {
    const n = this.connections;
    await this.socket?.close();
    await this.untilConnected(n, timeoutMs);
    await this.socket?.roundTrip(5_000).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.socket?.close();
    await this.loop;
  }
}

// ---- the conversation socket, for sends -----------------------------------------------------

class ConvChannel {
  private socket: Socket | null = null;

  constructor(
    private readonly api: Api,
    private readonly session: Session,
    private readonly conversationId: string,
  ) {}

  async send(p: Planned, timeoutMs: number): Promise<SendOutcome> {
    if (!this.socket?.isOpen) {
      this.socket = null;
      let ws: Socket;
      try {
        ws = await this.api.openSocket(`/conversations/${this.conversationId}/ws`, this.session.token);
      } catch {
        return { kind: "retry", tag: "net" };
      }
      if (ws.status !== 101) {
        if (ws.status === 0) return { kind: "retry", tag: "net" };
        return { kind: "retry", tag: `ws-handshake ${ws.status}`, clientError: ws.status >= 400 && ws.status < 500 };
      }
      this.socket = ws;
    }
    const ws = this.socket;
    // Sends on one channel are one at a time: nothing earlier is waited on, so the broadcasts collected so far can go.
    ws.frames.length = 0;
    ws.send({ type: "send", client_message_id: p.client_message_id, kind: "text", content: p.content });
    let f: any;
    try {
      f = await ws.waitFor(
        (x) => (x?.type === "sent" && x.client_message_id === p.client_message_id) || (x?.type === "error" && x.ref === p.client_message_id),
        timeoutMs,
        "sent",
      );
    } catch (err) {
      const closed = ws.closeInfo !== null;
      if (!closed) ws.ws.terminate();
      this.socket = null;
      return { kind: "retry", tag: closed ? "net" : "timeout" };
    }
    if (f.type === "sent") return { kind: "ack", tag: "sent", message: f.message };
    if (f.code === "rate_limited") return { kind: "retry", tag: "ws:rate_limited", waitMs: (Number(f.retry_after) || 1) * 1_000 };
    if (f.code === "invalid_request" || f.code === "too_large" || f.code === "limit_exceeded") {
      return { kind: "reject", tag: `ws:${f.code}`, body: JSON.stringify(f) };
    }
    return { kind: "retry", tag: `ws:${f.code}`, clientError: f.code !== "internal" };
  }

  async close(): Promise<void> {
    await this.socket?.close();
    this.socket = null;
  }
}

async function sendOverHttp(api: Api, s: Session, p: Planned): Promise<SendOutcome> {
  let res;
  try {
    res = await api.send(s, p.conversation_id, p.client_message_id, p.content);
  } catch (err) {
    const name = (err as Error)?.name;
    return { kind: "retry", tag: name === "TimeoutError" || name === "AbortError" ? "timeout" : "net" };
  }
  const tag = String(res.status);
  if (res.status === 201 || res.status === 200) return { kind: "ack", tag, message: res.json };
  if (res.status === 429) return { kind: "retry", tag, waitMs: (Number(res.headers.get("retry-after")) || 1) * 1_000 };
  if (res.status === 400 || res.status === 413 || res.status === 422) return { kind: "reject", tag, body: res.text };
  return { kind: "retry", tag, clientError: res.status < 500 };
}

/** The (member, conversation, seq) deliveries acked but not yet seen on the member's device, kept up to date. */
class OwedDeliveries {
  private readonly delivered = new Set<string>();
  private readonly pending = new Set<string>();
  private readonly members = new Map<string, string[]>();

  setMembers(conversationId: string, userIds: string[]): void {
    this.members.set(conversationId, userIds);
  }

  acked(conversationId: string, seq: number): void {
    for (const u of this.members.get(conversationId) ?? []) {
      const k = `${u}|${conversationId}|${seq}`;
      if (!this.delivered.has(k)) this.pending.add(k);
    }
  }

  delivered_(d: Delivery): void {
    const k = `${d.user_id}|${d.conversation_id}|${d.seq}`;
    this.delivered.add(k);
    this.pending.delete(k);
  }

  get size(): number {
    return this.pending.size;
  }
}

// ---- layout ------------------------------------------------------------------------------

export interface Layout {
  directs: [number, number][];
  groups: { name: string; members: number[] }[];
}

/** Direct conversations between ring neighbours, groups of `groupSize` over a shuffled order, and one of everyone. */
export function planLayout(n: number, groupSize: number, rng: Rng): Layout {
  if (n < 2) throw new Error("at least 2 clients");
  const directs: [number, number][] = n === 2 ? [[0, 1]] : Array.from({ length: n }, (_, i) => [i, (i + 1) % n] as [number, number]);
  const groups: { name: string; members: number[] }[] = [];
  if (n > groupSize) {
    const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
    const chunks: number[][] = [];
    for (let i = 0; i < n; i += groupSize) chunks.push(order.slice(i, i + groupSize));
    if (chunks.length > 1 && chunks.at(-1)!.length < 3) chunks.at(-2)!.push(...chunks.pop()!);
    chunks.forEach((members, i) => groups.push({ name: `g${i + 1}`, members }));
  }
  groups.push({ name: "all", members: Array.from({ length: n }, (_, i) => i) });
  return { directs, groups };
}

// ---- the run -----------------------------------------------------------------------------

export async function runChaos(partial: Partial<ChaosOptions> = {}): Promise<ChaosResult> {
  const opts: ChaosOptions = { ...DEFAULTS, ...partial };
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  const root = new Rng(opts.seed);
  const layoutRng = root.fork();
  const planRng = root.fork();
  const chaosRng = root.fork();
  const dropRng = root.fork();
  const clientRngs = Array.from({ length: opts.clients }, () => root.fork());

  const counters: Counters = {
    attempts: 0,
    retries: 0,
    outcomes: {},
    repeats: 0,
    maxAttempts: 0,
    rejected: 0,
    gaveUp: 0,
    deviceConnections: 0,
    deviceReconnects: 0,
    deviceRefusals: {},
    clientDrops: 0,
    heartbeatKills: 0,
    ackMismatches: 0,
    ackLatencyMs: { p50: 0, p95: 0, p99: 0, max: 0 },
  };
  const latencies: number[] = [];
  const owed = new OwedDeliveries();
  const problems: string[] = [];
  const attempts: Attempt[] = [];
  const acks: Ack[] = [];
  const restarts: RestartRecord[] = [];
  let phase: Progress["phase"] = "setup";
  let serverUp = false;
  let undelivered: number | undefined;
  const total = opts.clients * opts.messages;

  const persistDir = mkdtempSync(join(tmpdir(), "edge-chat-chaos-"));
  const extraArgs = opts.sendRate > 0 ? ["--var", `SEND_RATE_PER_MINUTE:${opts.sendRate}`] : [];
  log(`starting the server (state ${persistDir}${extraArgs.length ? `, ${extraArgs.join(" ")}` : ""})`);
  const srv: ChaosServer = await startServer(persistDir, extraArgs);
  serverUp = true;
  const api = new Api(srv.server.baseUrl);
  const clients: Client[] = [];
  const conversations: ConversationInfo[] = [];

  const progress = (): Progress => ({
    elapsedMs: Date.now() - t0,
    phase,
    acked: acks.length,
    total,
    attempts: counters.attempts,
    retries: counters.retries,
    restartsDone: restarts.length,
    restarts: opts.restarts,
    serverUp,
    deliveries: clients.reduce((n, c) => n + c.device.deliveries.length, 0),
    reconnects: counters.deviceReconnects,
    undelivered,
  });
  const ticker = opts.onProgress ? setInterval(() => opts.onProgress!(progress()), opts.progressEveryMs) : null;

  let setupMs = 0;
  let sendMs = 0;
  let settleMs = 0;
  let deliveryWaitMs = 0;
  let result: CheckResult | null = null;
  try {
    // ---- setup: users, device sockets, conversations ----
    for (let i = 0; i < opts.clients; i += 8) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(8, opts.clients - i) }, () => api.register("chaos")),
      );
      batch.forEach((session, j) => {
        const idx = i + j;
        clients.push({
          idx,
          label: `c${String(idx).padStart(2, "0")}`,
          session,
          convs: [],
          rng: clientRngs[idx]!,
          device: new DeviceStream(api, session, counters, (d) => owed.delivered_(d)),
          channels: new Map(),
        });
      });
    }
    // Device sockets first: the `conversation` events give each device its first cursor.
    await Promise.all(clients.map((c) => c.device.start()));

    const layout = planLayout(opts.clients, opts.groupSize, layoutRng);
    const addConv = (id: string, label: string, members: Client[]) => {
      conversations.push({ id, label, members: members.map((m) => m.session.user_id) });
      owed.setMembers(id, members.map((m) => m.session.user_id));
      for (const m of members) m.convs.push(id);
    };
    for (const [a, b] of layout.directs) {
      const [ca, cb] = [clients[a]!, clients[b]!];
      addConv(await api.direct(ca.session, cb.session), `direct ${ca.label}-${cb.label}`, [ca, cb]);
    }
    for (const g of layout.groups) {
      const members = g.members.map((i) => clients[i]!);
      const id = await api.group(members[0]!.session, members.slice(1).map((m) => m.session), `chaos ${g.name}`);
      addConv(id, `group ${g.name}`, members);
    }
    const setupDeadline = Date.now() + 30_000;
    for (const c of clients) {
      while (!c.convs.every((id) => c.device.conversationsSeen.has(id)) || c.device.lastCursor === undefined) {
        if (Date.now() > setupDeadline) throw new Error(`${c.label}'s device did not hear of all its conversations within 30 s`);
        await sleep(50);
      }
    }
    for (const c of clients) for (const id of c.convs) c.channels.set(id, new ConvChannel(api, c.session, id));
    log(`${opts.clients} clients, ${conversations.length} conversations (${layout.directs.length} direct, ${layout.groups.length} groups)`);

    const plans: Planned[][] = clients.map((c) =>
      Array.from({ length: opts.messages }, (_, m) => {
        const cmid = `chaos-${opts.seed}-${c.label}-${m}`;
        return {
          conversation_id: planRng.pick(c.convs),
          client_message_id: cmid,
          content: `${cmid} ${"x".repeat(planRng.int(0, 64))}`,
          order: m,
        };
      }),
    );
    setupMs = Date.now() - t0;

    // ---- send, with the chaos loop and client-side drops alongside ----
    phase = "send";
    const sendStart = Date.now();
    let sendersDone = false;

    const sendOne = async (c: Client, p: Planned) => {
      attempts.push({ conversation_id: p.conversation_id, sender_id: c.session.user_id, client_message_id: p.client_message_id, content: p.content });
      const started = Date.now();
      let backoff = 50;
      let tries = 0;
      let clientErrors = 0;
      for (;;) {
        tries++;
        counters.attempts++;
        if (tries > 1) counters.retries++;
        const outcome = c.rng.chance(opts.httpShare)
          ? await sendOverHttp(api, c.session, p)
          : await c.channels.get(p.conversation_id)!.send(p, opts.sendTimeoutMs);
        counters.outcomes[outcome.tag] = (counters.outcomes[outcome.tag] ?? 0) + 1;
        if (outcome.kind === "ack") {
          const m = outcome.message ?? {};
          if (m.conversation_id !== p.conversation_id || m.sender_id !== c.session.user_id || m.client_message_id !== p.client_message_id) {
            counters.ackMismatches++;
          }
          if (outcome.tag === "200") counters.repeats++;
          acks.push({
            conversation_id: p.conversation_id,
            sender_id: c.session.user_id,
            client_message_id: p.client_message_id,
            seq: m.seq,
            message_id: m.message_id,
            order: p.order,
          });
          owed.acked(p.conversation_id, m.seq);
          counters.maxAttempts = Math.max(counters.maxAttempts, tries);
          latencies.push(Date.now() - started);
          // The very last ack: crash at once, before its fan-out can finish.
          if (acks.length === total && chaosDone) fireFinalKill();
          return;
        }
        if (outcome.kind === "reject") {
          counters.rejected++;
          problems.push(`${c.label} ${p.client_message_id}: rejected (${outcome.tag}) ${outcome.body.slice(0, 200)}`);
          return;
        }
        clientErrors = outcome.clientError ? clientErrors + 1 : 0;
        if (clientErrors >= 20 || Date.now() - started > opts.giveUpMs) {
          counters.gaveUp++;
          problems.push(`${c.label} ${p.client_message_id}: gave up after ${tries} attempts (last: ${outcome.tag})`);
          return;
        }
        await sleep(outcome.waitMs ?? jitter(backoff));
        backoff = Math.min(backoff * 2, 1_000);
      }
    };
    let chaosDone = false;
    let finalKill: Promise<void> | null = null;
    const fireFinalKill = () => {
      if (finalKill || !opts.finalKill) return;
      const atMs = Date.now() - sendStart;
      const owedDeliveries = owed.size;
      const ackedBefore = acks.length;
      const t = Date.now();
      serverUp = false;
      const restarting = srv.restart(opts.signal);
      log(`final kill: ${opts.signal} right after the last ack, ${owedDeliveries} acked deliveries still owed to devices`);
      finalKill = restarting.then(() => {
        serverUp = true;
        restarts.push({ n: restarts.length + 1, final: true, signal: opts.signal, atMs, ackedBefore, downMs: Date.now() - t, owedDeliveries });
        log(`final kill: back after ${Date.now() - t} ms`);
      });
      // Awaited after the senders; until then a failed restart must not count as unhandled.
      finalKill.catch(() => undefined);
    };
    const senders = Promise.all(
      clients.map(async (c, i) => {
        for (const p of plans[i]!) await sendOne(c, p);
      }),
    ).finally(() => {
      sendersDone = true;
    });

    const byUser = new Map(clients.map((c) => [c.session.user_id, c]));
    /** (member, seq) pairs of `target` (seqs per conversation) that the member's device has not received. */
    const countUndelivered = (target: Map<string, number[]>) => {
      let missing = 0;
      for (const conv of conversations) {
        const seqs = target.get(conv.id) ?? [];
        for (const u of conv.members) {
          const got = new Set(byUser.get(u)!.device.deliveries.filter((d) => d.conversation_id === conv.id).map((d) => d.seq));
          for (const s of seqs) if (!got.has(s)) missing++;
        }
      }
      return missing;
    };
    const ackedSeqs = () => {
      const out = new Map<string, number[]>();
      for (const a of acks) {
        const list = out.get(a.conversation_id);
        if (list) list.push(a.seq);
        else out.set(a.conversation_id, [a.seq]);
      }
      return out;
    };
    const untilAcked = async (fraction: number) => {
      while (!sendersDone && acks.length < fraction * total) await sleep(20);
    };
    // Restart i at a random point around (i+1)/(K+1) of the acks, then a random few hundred ms on.
    const killAt = Array.from({ length: opts.restarts }, (_, i) => (i + 1 + (chaosRng.next() - 0.5) * 0.8) / (opts.restarts + 1));
    const chaos = (async () => {
      for (const [i, at] of killAt.entries()) {
        await untilAcked(at);
        await sleep(chaosRng.int(0, 400));
        if (opts.killWhen === "owed") {
          const until = Date.now() + 3_000;
          while (owed.size === 0 && Date.now() < until) await sleep(1);
        }
        const ackedBefore = acks.length;
        const atMs = Date.now() - sendStart;
        const owedDeliveries = owed.size;
        serverUp = false;
        const t = Date.now();
        const restarting = srv.restart(opts.signal);
        log(`restart ${i + 1}/${opts.restarts}: ${opts.signal} at ${ackedBefore}/${total} acked, ${owedDeliveries} acked deliveries owed to devices`);
        await restarting;
        serverUp = true;
        restarts.push({ n: i + 1, final: false, signal: opts.signal, atMs, ackedBefore, downMs: Date.now() - t, owedDeliveries });
        log(`restart ${i + 1}/${opts.restarts}: back after ${Date.now() - t} ms`);
      }
    })().finally(() => {
      chaosDone = true;
    });
    const dropAt = Array.from({ length: opts.drops }, () => dropRng.next()).sort((a, b) => a - b);
    const drops = (async () => {
      for (const at of dropAt) {
        await untilAcked(at);
        if (sendersDone) return;
        if (dropRng.pick(clients).device.drop()) counters.clientDrops++;
      }
    })();

    // A failed restart ends the run at once; the senders would only retry until they give up.
    await Promise.race([chaos, senders]);
    await chaos;
    await Promise.all([senders, drops]);
    sendMs = Date.now() - sendStart;
    log(`send phase done in ${(sendMs / 1000).toFixed(1)} s: ${acks.length}/${total} acked, ${counters.retries} retries`);
    fireFinalKill();
    await finalKill;

    // ---- settle: every stored message reaches every member's device ----
    phase = "settle";
    const settleStart = Date.now();
    const readHistory = async (reader: Client, conv: string): Promise<StoredMessage[]> => {
      for (let tries = 1; ; tries++) {
        try {
          return await api.allMessages(reader.session, conv);
        } catch (err) {
          if (tries >= 10) throw err;
          await sleep(500);
        }
      }
    };
    const readers = conversations.map((conv) => {
      const members = conv.members.map((u) => byUser.get(u)!);
      return { conv, a: members[0]!, b: members[members.length - 1]! };
    });
    const deliveryDeadline = Date.now() + opts.settleMs;
    const settle = async (target: Map<string, number[]>, minMs: number) => {
      const deadline = Math.max(deliveryDeadline, Date.now() + minMs);
      for (;;) {
        undelivered = countUndelivered(target);
        if (undelivered === 0 || Date.now() > deadline) return undelivered;
        await sleep(250);
      }
    };
    // First what was acked, before any request reaches a conversation object: after the final
    // kill only the objects' own recovery can deliver what the crash left owed.
    const missingAcked = await settle(ackedSeqs(), 0);
    deliveryWaitMs = Date.now() - settleStart;
    if (missingAcked > 0) problems.push(`${missingAcked} (member, acked message) deliveries still missing ${opts.settleMs} ms after the sends ended`);
    log(`devices ${missingAcked === 0 ? "have every acked message" : `still miss ${missingAcked} acked deliveries`} after ${(deliveryWaitMs / 1000).toFixed(1)} s`);
    // Then whatever else is stored (sends whose ack the client never saw).
    const reference = new Map<string, StoredMessage[]>();
    for (const r of readers) reference.set(r.conv.id, await readHistory(r.a, r.conv.id));
    const missingStored = await settle(new Map([...reference].map(([id, ms]) => [id, ms.map((m) => m.seq)])), 5_000);
    if (missingStored > 0 && missingAcked === 0) problems.push(`${missingStored} (member, stored message) deliveries still missing at the end of the settle period`);

    // Every device reconnects once more with its last cursor: the replay must bring nothing twice.
    await Promise.all(clients.map((c) => c.device.cycle(15_000)));
    await sleep(1_000);

    const histories: { conversation_id: string; reader: string; messages: StoredMessage[] }[] = [];
    for (const r of readers) {
      histories.push({ conversation_id: r.conv.id, reader: r.a.session.user_id, messages: await readHistory(r.a, r.conv.id) });
      histories.push({ conversation_id: r.conv.id, reader: r.b.session.user_id, messages: await readHistory(r.b, r.conv.id) });
    }
    settleMs = Date.now() - settleStart;

    // ---- check ----
    phase = "check";
    await Promise.all(clients.map((c) => c.device.stop()));
    await Promise.all(clients.flatMap((c) => [...c.channels.values()].map((ch) => ch.close())));
    result = check({
      conversations,
      attempts,
      acks,
      histories,
      deliveries: clients.flatMap((c) => c.device.deliveries),
    });
  } catch (err) {
    log(`run failed: ${String(err)}; server log ${srv.server.logFile}, state kept in ${persistDir}`);
    await srv.server.stop("SIGKILL").catch(() => undefined);
    throw err;
  } finally {
    if (ticker) clearInterval(ticker);
    await Promise.all(clients.map((c) => c.device.stop().catch(() => undefined)));
    await Promise.all(clients.flatMap((c) => [...c.channels.values()].map((ch) => ch.close().catch(() => undefined))));
  }

  phase = "done";
  if (counters.gaveUp > 0) problems.push(`${counters.gaveUp} messages never acked (the client gave up)`);
  if (counters.rejected > 0) problems.push(`${counters.rejected} messages rejected`);
  if (counters.ackMismatches > 0) problems.push(`${counters.ackMismatches} acks named another message than the one sent`);
  const warnings: string[] = [];
  const reloads = srv.server.reloads();
  if (reloads > 0) {
    warnings.push(`wrangler dev hot-reloaded the Worker ${reloads} time(s): a file it watches changed during the run (an extra fault; the counts above include its effects)`);
  }
  latencies.sort((a, b) => a - b);
  const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  counters.ackLatencyMs = { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: latencies.at(-1) ?? 0 };
  const ok = result!.ok && problems.length === 0;
  const appliedArgs = extraArgsOf(srv.server);
  const kept = !ok || opts.keepState;
  const logTail = ok ? undefined : srv.server.log(6_000);
  await srv.server.stop("SIGTERM");
  if (!kept) {
    rmSync(persistDir, { recursive: true, force: true });
    if (existsSync(srv.server.logFile)) rmSync(srv.server.logFile, { force: true });
  }
  const { onProgress: _p, log: _l, ...plainOptions } = opts;
  return {
    ok,
    problems,
    warnings,
    options: plainOptions,
    startedAt,
    durations: { setupMs, sendMs, settleMs, deliveryWaitMs, totalMs: Date.now() - t0 },
    restarts,
    counters,
    check: result!,
    server: { baseUrl: srv.server.baseUrl, persistDir, logFile: srv.server.logFile, extraArgs: appliedArgs, reloads, kept, logTail },
    layout: {
      conversations: conversations.map((c) => ({ id: c.id, label: c.label, members: c.members })),
      clients: clients.map((c) => ({ label: c.label, user_id: c.session.user_id })),
    },
  };
}
