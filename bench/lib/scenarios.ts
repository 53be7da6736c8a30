/**
 * The four scenarios. Each runs the same script against the real server and the
 * baseline (one after the other, never at once), and returns figures side by side.
 */
import { step, type Expect, type StepOptions, type StepResult } from "./measure.ts";
import type { Options } from "./options.ts";
import type { Pool } from "./pool.ts";
import type { SocketSpec } from "./protocol.ts";
import { cpuMs, rssBytes } from "./server.ts";
import type { Accounts, BenchUser, Room, Target } from "./setup.ts";
import { fmtMs, inParallel, progress, sleep } from "./util.ts";

export interface Ctx {
  o: Options;
  pool: Pool;
  accounts: Accounts;
  /** The real server first, then the baseline (if enabled). */
  targets: Target[];
  layouts: Map<string, unknown>;
  /** Starts another pair of servers like the main ones (the memory scenario measures each kind on its own). */
  freshServers: () => Promise<{ targets: Target[]; accounts: Accounts; dispose: () => Promise<void> }>;
}

/** One compared figure: the real server's value beside the baseline's. */
export interface Figure {
  scenario: string;
  name: string;
  unit: string;
  real: number | null;
  baseline: number | null;
  better: "lower" | "higher";
  note?: string;
}

export interface ScenarioResult {
  figures: Figure[];
  details: Record<string, unknown>;
}

const tagOf = (t: Target) => (t.name === "edge-chat" ? "r" : "b");

async function once<T>(ctx: Ctx, key: string, make: () => Promise<T>): Promise<T> {
  if (!ctx.layouts.has(key)) ctx.layouts.set(key, await make());
  return ctx.layouts.get(key) as T;
}

async function openAll(ctx: Ctx, t: Target, what: string, specs: SocketSpec[]): Promise<void> {
  const t0 = performance.now();
  const r = await ctx.pool.open(specs, { width: 16 });
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  progress(`  ${t.name}: opened ${r.opened}/${specs.length} ${what} in ${s}s`);
  if (r.failed > 0) throw new Error(`${t.name}: ${r.failed} ${what} failed to open, e.g. ${r.errors.join("; ")}`);
}

/**
 * Waits until both servers are quiet (under 5% of a core for a whole second), at least
 * `minMs`: closing sockets leaves work behind (the real server's presence grace alarm
 * fires 5 s after a device socket closes), and it must not land in the next measurement.
 */
async function settle(ctx: Ctx, minMs = 0): Promise<void> {
  if (!ctx.targets.some((t) => t.name === "edge-chat")) minMs = 0;
  const t0 = performance.now();
  const pids = ctx.targets.map((t) => t.server.pid);
  let prev = pids.map(cpuMs);
  let quiet = 0;
  while (performance.now() - t0 < 30_000) {
    await sleep(500);
    const cur = pids.map(cpuMs);
    const busy = cur.some((c, i) => c - prev[i]! > 25);
    prev = cur;
    quiet = busy ? 0 : quiet + 1;
    if (quiet >= 2 && performance.now() - t0 >= minMs) break;
  }
  const waited = (performance.now() - t0) / 1000;
  if (waited > minMs / 1000 + 1.5) progress(`  (waited ${waited.toFixed(1)}s for the servers to go quiet)`);
}

function stepOptions(ctx: Ctx, overrides: Partial<StepOptions> = {}): StepOptions {
  return { contentBytes: ctx.o.contentBytes, drainMs: 10_000, deliveryWaitMs: 10_000, abortAfterMs: 1_000, ...overrides };
}

const errorsOf = (r: StepResult) => Object.values(r.errors).reduce((a, b) => a + b, 0);

function describe(r: StepResult): string {
  const err = errorsOf(r);
  return (
    `ack p50/p99 ${fmtMs(r.ack.p50)}/${fmtMs(r.ack.p99)} ms` +
    (r.conv.n ? `, conv p50/p99 ${fmtMs(r.conv.p50)}/${fmtMs(r.conv.p99)}` : "") +
    (r.sync.n ? `, sync p50/p99 ${fmtMs(r.sync.p50)}/${fmtMs(r.sync.p99)}` : "") +
    `, ${r.deliveriesPerSecond} deliveries/s` +
    (r.serverCpuMsPerMessage !== null ? `, server CPU ${r.serverCpuMsPerMessage} ms/msg` : "") +
    (r.aborted ? ", ABORTED (acks owed > 1 s)" : "") +
    (r.ack.missing ? `, ${r.ack.missing} unacked` : "") +
    (err ? `, errors ${JSON.stringify(r.errors)}` : "") +
    (r.clientLagMaxMs > 50 ? `, client lag max ${r.clientLagMaxMs} ms` : "")
  );
}

/** Per-target results keyed by server name. */
type PerTarget<T> = Partial<Record<Target["name"], T>>;

function pair(
  scenario: string,
  name: string,
  unit: string,
  better: Figure["better"],
  values: PerTarget<number | null | undefined>,
  note?: string,
): Figure {
  const v = (x: number | null | undefined) => (x === undefined || x === null || Number.isNaN(x) ? null : x);
  return { scenario, name, unit, better, real: v(values["edge-chat"]), baseline: v(values.baseline), ...(note ? { note } : {}) };
}

/** A step is held when every latency that counts has p99 ≤ the limit, with no error and nothing lost. */
function heldStep(r: StepResult, maxP99: number, kinds: readonly ("ack" | "conv" | "sync")[]): boolean {
  const ok = (q: StepResult["ack"]) => q.n === 0 || (q.p99 !== null && q.p99 <= maxP99);
  return r.ack.p99 !== null && kinds.every((k) => ok(r[k])) && !r.aborted && r.ack.missing === 0 && errorsOf(r) === 0;
}

/**
 * The rate ramp: `rates` in order until a step is not held, then ×1.25 steps from the
 * highest held rate up to the one that failed, so "highest rate held" is within 25 %.
 */
async function ramp(
  rates: number[],
  maxP99: number,
  kinds: readonly ("ack" | "conv" | "sync")[],
  run: (rate: number) => Promise<StepResult>,
  report: (rate: number, held: boolean, r: StepResult) => void,
): Promise<{ steps: (StepResult & { held: boolean })[]; maxHeld: number }> {
  const steps: (StepResult & { held: boolean })[] = [];
  let maxHeld = 0;
  const attempt = async (rate: number) => {
    const r = await run(rate);
    const held = heldStep(r, maxP99, kinds);
    steps.push({ ...r, held });
    report(rate, held, r);
    if (held) maxHeld = Math.max(maxHeld, rate);
    return held;
  };
  let failedAt: number | null = null;
  for (const rate of rates) {
    if (!(await attempt(rate))) {
      failedAt = rate;
      break;
    }
  }
  if (failedAt !== null && maxHeld > 0) {
    for (let rate = Math.round(maxHeld * 1.25); rate < failedAt * 0.97; rate = Math.round(rate * 1.25)) {
      if (!(await attempt(rate))) break;
    }
  }
  return { steps, maxHeld };
}

/** The highest rate of `rates` (not a ×1.25 refinement) held in `steps`: both servers ran it. */
function coarseHeld(steps: (StepResult & { held: boolean })[] | undefined, rates: number[]): number {
  const held = (steps ?? []).filter((st) => st.held && rates.includes(st.rate)).map((st) => st.rate);
  return held.length ? Math.max(...held) : rates[0]!;
}

/** Billed units per message sent and per delivery, from a step's meter reading. */
function unitFigures(scenario: string, label: string, r: PerTarget<StepResult | undefined>): Figure[] {
  const per = (x: StepResult | undefined, f: (u: NonNullable<StepResult["units"]>) => number, by: "msg" | "delivery") => {
    if (!x?.units) return null;
    const d = x.conv.n - x.conv.missing + x.sync.n - x.sync.missing;
    const n = by === "msg" ? x.sent : d;
    return n > 0 ? Math.round((f(x.units) / n) * 1000) / 1000 : null;
  };
  const doReq = (u: NonNullable<StepResult["units"]>) => u.doRpc + u.wsIn + u.alarms;
  const rows: [string, (u: NonNullable<StepResult["units"]>) => number, "msg" | "delivery"][] = [
    ["Durable Object requests (RPCs + socket messages + alarms) per message", doReq, "msg"],
    ["Durable Object requests per delivery", doReq, "delivery"],
    ["object RPCs per message", (u) => u.doRpc, "msg"],
    ["SQLite rows read per message", (u) => u.sqlRowsRead, "msg"],
    ["SQLite rows written per message", (u) => u.sqlRowsWritten, "msg"],
    ["SQLite rows written per delivery", (u) => u.sqlRowsWritten, "delivery"],
    ["D1 queries per message", (u) => u.d1Queries, "msg"],
    ["D1 rows read per message", (u) => u.d1RowsRead, "msg"],
    ["Worker invocations per message", (u) => u.workerInvocations, "msg"],
  ];
  return rows.map(([name, f, by]) =>
    pair(scenario, `${name} ${label}`, "units", "lower", { "edge-chat": per(r["edge-chat"], f, by), baseline: per(r.baseline, f, by) }),
  );
}

// ---- sustained ----------------------------------------------------------------

interface SustainedLayout {
  senders: BenchUser[];
  receivers: BenchUser[];
  room: Room;
}

export async function sustained(ctx: Ctx): Promise<ScenarioResult> {
  const o = ctx.o;
  const layout = await once<SustainedLayout>(ctx, "sustained", async () => {
    progress(`sustained: registering ${o.sustainedSenders} senders through POST /v1/auth/register, seeding 4 receivers`);
    const senders = await ctx.accounts.register(o.sustainedSenders, "snd");
    const receivers = await ctx.accounts.seed(4, "rcv");
    const room = await ctx.accounts.group("sustained", [...senders, ...receivers]);
    return { senders, receivers, room };
  });
  const { senders, receivers, room } = layout;
  // Every member's inbox gets each message; receivers 0-1 watch the conversation socket,
  // receivers 2-3 only their device socket (/v1/sync), which the inbox fan-out feeds.
  const expect: Expect = { convPerMessage: senders.length + 2 - 1, syncPerMessage: 2 };
  const runs: PerTarget<{ steps: (StepResult & { held: boolean })[]; maxHeld: number; lastTried: number }> = {};

  for (const t of ctx.targets) {
    const tag = tagOf(t);
    await t.prepare(room);
    const specs: SocketSpec[] = [
      ...senders.map((u, i) => ({ key: `${tag}.sus.s${i}`, url: t.convUrl(room, u), kind: "conv" as const, user: u.userId })),
      ...receivers.slice(0, 2).map((u, i) => ({ key: `${tag}.sus.rc${i}`, url: t.convUrl(room, u), kind: "conv" as const, user: u.userId })),
      ...receivers.slice(2, 4).map((u, i) => ({ key: `${tag}.sus.rd${i}`, url: t.syncUrl(u), kind: "sync" as const, user: u.userId })),
    ];
    progress(`sustained on ${t.name}: ${senders.length} senders + 4 receivers, rates ${o.rates.join(", ")} msg/s, ${o.stepSeconds}s each`);
    await openAll(ctx, t, "sockets", specs);
    const senderKeys = specs.slice(0, senders.length).map((s) => s.key);
    await step(ctx.pool, t.server, `${tag}-sus-warm`, senderKeys, 50, 25, expect, stepOptions(ctx));
    await settle(ctx);

    const { steps, maxHeld } = await ramp(o.rates, o.maxAckP99, ["ack"], async (rate) =>
      step(ctx.pool, t.server, `${tag}-sus-${rate}`, senderKeys, rate, Math.max(1, Math.round(rate * o.stepSeconds)), expect, stepOptions(ctx)),
      (rate, held, r) => progress(`  ${t.name} ${String(rate).padStart(5)} msg/s: ${held ? "held" : "NOT held"} — ${describe(r)}`),
    );
    runs[t.name] = { steps, maxHeld, lastTried: steps.at(-1)!.rate };
    await ctx.pool.close(specs.map((s) => s.key));
    await settle(ctx, t.name === "edge-chat" ? 6_000 : 0);
  }

  const real = runs["edge-chat"];
  const base = runs.baseline;
  // Latencies are compared at the highest rate of the coarse ramp the real server held (the baseline ran it too).
  const at = coarseHeld(real?.steps, o.rates);
  const stepAt = (run: typeof real) => run?.steps.find((s) => s.rate === at);
  const rs = stepAt(real);
  const bs = stepAt(base);
  const untested = (run: typeof real) => run && run.steps.every((s) => s.held);
  const note =
    [untested(real) ? "edge-chat held every rate tried" : "", untested(base) ? "baseline held every rate tried (its limit is higher)" : ""]
      .filter(Boolean)
      .join("; ") || undefined;
  const S = "sustained";
  const figures: Figure[] = [
    pair(S, `highest rate held (ack p99 ≤ ${o.maxAckP99} ms)`, "msg/s", "higher", { "edge-chat": real?.maxHeld, baseline: base?.maxHeld }, note),
  ];
  for (const [kind, label] of [
    ["ack", "ack (send → sent)"],
    ["conv", "delivery, conversation socket"],
    ["sync", "delivery, device socket (inbox fan-out)"],
  ] as const) {
    for (const p of ["p50", "p99", "max"] as const) {
      figures.push(pair(S, `${label} ${p} @ ${at} msg/s`, "ms", "lower", { "edge-chat": rs?.[kind][p], baseline: bs?.[kind][p] }));
    }
  }
  figures.push(pair(S, `server CPU per message @ ${at} msg/s`, "ms", "lower", { "edge-chat": rs?.serverCpuMsPerMessage, baseline: bs?.serverCpuMsPerMessage }));
  figures.push(...unitFigures(S, `@ ${at} msg/s`, { "edge-chat": rs, baseline: bs }));
  return { figures, details: { comparedAtRate: at, layout: { senders: senders.length, receivers: receivers.length }, runs } };
}

// ---- room --------------------------------------------------------------------

/**
 * A room of `roomMembers` members, each with only its conversation socket open, every
 * member sending in turn (open loop); then the same with every member's device socket
 * open too, so each message also goes through every member's inbox to a socket.
 */
export async function room(ctx: Ctx): Promise<ScenarioResult> {
  const o = ctx.o;
  const layout = await once(ctx, "room", async () => {
    progress(`room: seeding ${o.roomMembers} users, creating their group through the API`);
    const members = await ctx.accounts.seed(o.roomMembers, "room");
    return { members, room: await ctx.accounts.group("room", members) };
  });
  const { members, room: theRoom } = layout;
  const n = members.length;
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  for (const variant of o.roomVariants) {
    const devices = variant === "devices";
    const expect: Expect = { convPerMessage: n - 1, syncPerMessage: devices ? n - 1 : 0 };
    const runs: PerTarget<{ steps: (StepResult & { held: boolean })[]; maxHeld: number }> = {};
    for (const t of ctx.targets) {
      const tag = tagOf(t);
      await t.prepare(theRoom);
      const conv = members.map((u, i) => ({ key: `${tag}.room${variant}.c${i}`, url: t.convUrl(theRoom, u), kind: "conv" as const, user: u.userId }));
      const sync = devices ? members.map((u, i) => ({ key: `${tag}.room${variant}.d${i}`, url: t.syncUrl(u), kind: "sync" as const, user: u.userId })) : [];
      progress(`room on ${t.name}: ${n} members on conversation sockets${devices ? " and device sockets" : " only"}, every member sending, ${o.roomStepSeconds}s a step`);
      if (sync.length) await openAll(ctx, t, "device sockets", sync);
      await openAll(ctx, t, "conversation sockets", conv);
      const keys = conv.map((c) => c.key);
      await step(ctx.pool, t.server, `${tag}-room${variant}-warm`, keys, 20, 20, expect, stepOptions(ctx));
      await settle(ctx);
      runs[t.name] = await ramp(o.roomRates, o.maxAckP99, ["ack", "conv", "sync"], async (rate) =>
        step(ctx.pool, t.server, `${tag}-room${variant}-${rate}`, keys, rate, Math.max(1, Math.round(rate * o.roomStepSeconds)), expect, stepOptions(ctx)),
        (rate, held, r) => progress(`  ${t.name} ${String(rate).padStart(5)} msg/s: ${held ? "held" : "NOT held"} — ${describe(r)}`),
      );
      await ctx.pool.close([...conv, ...sync].map((x) => x.key));
      await settle(ctx, t.name === "edge-chat" ? 6_000 : 0);
    }
    const R = devices ? `room (${n} members, conversation + device sockets)` : `room (${n} members, conversation sockets only)`;
    const real = runs["edge-chat"];
    const base = runs.baseline;
    const at = coarseHeld(real?.steps, o.roomRates);
    const rs = real?.steps.find((st) => st.rate === at);
    const bs = base?.steps.find((st) => st.rate === at);
    figures.push(pair(R, `highest rate held (ack and delivery p99 ≤ ${o.maxAckP99} ms)`, "msg/s", "higher", { "edge-chat": real?.maxHeld, baseline: base?.maxHeld }));
    for (const [kind, label] of [["ack", "ack"], ["conv", "delivery, conversation socket"], ...(devices ? [["sync", "delivery, device socket"] as const] : [])] as const) {
      for (const p of ["p50", "p99"] as const) {
        figures.push(pair(R, `${label} ${p} @ ${at} msg/s`, "ms", "lower", { "edge-chat": rs?.[kind][p], baseline: bs?.[kind][p] }));
      }
    }
    figures.push(pair(R, `server CPU per message @ ${at} msg/s`, "ms", "lower", { "edge-chat": rs?.serverCpuMsPerMessage, baseline: bs?.serverCpuMsPerMessage }));
    const perMember = (x: StepResult | undefined) => (x?.serverCpuMsPerMessage != null ? Math.round((x.serverCpuMsPerMessage / n) * 1000) / 1000 : null);
    figures.push(pair(R, `server CPU per member per message @ ${at} msg/s`, "ms", "lower", { "edge-chat": perMember(rs), baseline: perMember(bs) }));
    figures.push(...unitFigures(R, `@ ${at} msg/s`, { "edge-chat": rs, baseline: bs }));
    details[variant] = { comparedAtRate: at, runs };
  }
  return { figures, details: { members: n, ...details } };
}

// ---- fan-out -----------------------------------------------------------------

export async function fanout(ctx: Ctx): Promise<ScenarioResult> {
  const o = ctx.o;
  const layout = await once(ctx, "fanout", async () => {
    progress(`fanout: seeding ${o.fanoutMembers} users, creating a ${o.fanoutMembers}-member group through the API`);
    const members = await ctx.accounts.seed(o.fanoutMembers, "fan");
    const t0 = performance.now();
    const room = await ctx.accounts.group("fanout", members);
    progress(`  group created in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    return { members, room, createMs: performance.now() - t0 };
  });
  const { members, room } = layout;
  const n = members.length;
  const expect: Expect = { convPerMessage: n - 1, syncPerMessage: n - 1 };
  const runs: PerTarget<{ steady: StepResult; burst: StepResult }> = {};
  for (const t of ctx.targets) {
    const tag = tagOf(t);
    await t.prepare(room);
    progress(`fanout on ${t.name}: ${n} members, each with a device socket and a conversation socket`);
    const sync = members.map((u, i) => ({ key: `${tag}.fan.d${i}`, url: t.syncUrl(u), kind: "sync" as const, user: u.userId }));
    const conv = members.map((u, i) => ({ key: `${tag}.fan.c${i}`, url: t.convUrl(room, u), kind: "conv" as const, user: u.userId }));
    await openAll(ctx, t, "device sockets", sync);
    await openAll(ctx, t, "conversation sockets", conv);
    await sleep(500);
    const senders = conv.slice(0, Math.min(8, n)).map((s) => s.key);
    const opts = stepOptions(ctx, { deliveryWaitMs: 30_000, drainMs: 20_000, abortAfterMs: 0 });
    await step(ctx.pool, t.server, `${tag}-fan-warm`, senders, 2, 2, expect, opts);
    await settle(ctx);
    const steady = await step(ctx.pool, t.server, `${tag}-fan-steady`, senders, o.fanoutRate, Math.max(1, Math.round(o.fanoutRate * o.fanoutSeconds)), expect, opts);
    progress(`  ${t.name} steady ${o.fanoutRate} msg/s × ${n - 1} others × 2 sockets: ${describe(steady)}`);
    const burst = await step(ctx.pool, t.server, `${tag}-fan-burst`, senders, 2000, o.fanoutBurst, expect, opts);
    progress(`  ${t.name} burst of ${o.fanoutBurst} messages: ${describe(burst)}, all delivered after ${burst.spanMs} ms`);
    runs[t.name] = { steady, burst };
    await ctx.pool.close([...sync, ...conv].map((s) => s.key));
    await settle(ctx, t.name === "edge-chat" ? 6_000 : 0);
  }
  const r = runs["edge-chat"];
  const b = runs.baseline;
  const F = "fanout";
  const figures: Figure[] = [
    pair(F, `deliveries/s, burst of ${o.fanoutBurst} msgs to ${n} members (conv + device sockets)`, "deliveries/s", "higher", {
      "edge-chat": r?.burst.deliveriesPerSecond,
      baseline: b?.burst.deliveriesPerSecond,
    }),
    pair(F, `burst: last delivery after`, "ms", "lower", { "edge-chat": r?.burst.spanMs, baseline: b?.burst.spanMs }),
    pair(F, `deliveries/s, steady ${o.fanoutRate} msg/s`, "deliveries/s", "higher", {
      "edge-chat": r?.steady.deliveriesPerSecond,
      baseline: b?.steady.deliveriesPerSecond,
    }),
  ];
  for (const [phase, label] of [
    ["steady", `steady ${o.fanoutRate} msg/s`],
    ["burst", "burst"],
  ] as const) {
    for (const [kind, k] of [
      ["conv", "conversation socket"],
      ["sync", "device socket"],
    ] as const) {
      for (const p of ["p50", "p99"] as const) {
        figures.push(pair(F, `${label}: delivery ${k} ${p}`, "ms", "lower", { "edge-chat": r?.[phase][kind][p], baseline: b?.[phase][kind][p] }));
      }
    }
  }
  figures.push(
    pair(F, "burst: server CPU per message", "ms", "lower", { "edge-chat": r?.burst.serverCpuMsPerMessage, baseline: b?.burst.serverCpuMsPerMessage }),
  );
  figures.push(pair(F, `steady ${o.fanoutRate} msg/s: ack p99`, "ms", "lower", { "edge-chat": r?.steady.ack.p99, baseline: b?.steady.ack.p99 }));
  figures.push(...unitFigures(F, "(burst)", { "edge-chat": r?.burst, baseline: b?.burst }));
  return { figures, details: { members: n, groupCreateMs: Math.round(layout.createMs), runs } };
}

// ---- many conversations ------------------------------------------------------

interface ManyLayout {
  users: BenchUser[];
  rooms: Room[];
}

/** `conversations` groups of `members` seeded users each, created through the API. Shared by `many` and `memory`. */
async function manyLayout(ctx: Ctx, conversations: number, members: number): Promise<ManyLayout> {
  const key = `many:${conversations}x${members}`;
  return once(ctx, key, async () => {
    progress(`setup: seeding ${conversations * members} users, creating ${conversations} groups of ${members} through the API`);
    const users = await ctx.accounts.seed(conversations * members, "m");
    const t0 = performance.now();
    const rooms = await inParallel(
      Array.from({ length: conversations }, (_, i) => i),
      4,
      (i) => ctx.accounts.group(`many${i}`, users.slice(i * members, (i + 1) * members)),
    );
    progress(`  ${conversations} groups created in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    return { users, rooms };
  });
}

export async function many(ctx: Ctx): Promise<ScenarioResult> {
  const o = ctx.o;
  const { rooms } = await manyLayout(ctx, o.manyConversations, o.manyMembers);
  const expect: Expect = { convPerMessage: o.manyMembers - 1, syncPerMessage: 0 };
  const runs: PerTarget<StepResult> = {};
  for (const t of ctx.targets) {
    const tag = tagOf(t);
    await inParallel(rooms, 8, (room) => t.prepare(room));
    const specs = rooms.flatMap((room, ri) =>
      room.members.map((u, mi) => ({ key: `${tag}.many.${ri}.${mi}`, url: t.convUrl(room, u), kind: "conv" as const, user: u.userId })),
    );
    progress(`many on ${t.name}: ${specs.length} conversation sockets over ${rooms.length} conversations, ${o.manyRate} msg/s for ${o.manySeconds}s`);
    await openAll(ctx, t, "conversation sockets", specs);
    const keys = specs.map((s) => s.key);
    await step(ctx.pool, t.server, `${tag}-many-warm`, keys, 50, 50, expect, stepOptions(ctx, { abortAfterMs: 0 }));
    await settle(ctx);
    const r = await step(ctx.pool, t.server, `${tag}-many`, keys, o.manyRate, Math.round(o.manyRate * o.manySeconds), expect, stepOptions(ctx, { abortAfterMs: 0 }));
    progress(`  ${t.name}: ${describe(r)}`);
    runs[t.name] = r;
    await ctx.pool.close(keys);
    await settle(ctx, 1_000);
  }
  const r = runs["edge-chat"];
  const b = runs.baseline;
  const M = "many";
  const figures: Figure[] = [];
  for (const [kind, label] of [
    ["ack", "ack"],
    ["conv", "delivery (conversation socket)"],
  ] as const) {
    for (const p of ["p50", "p99", "max"] as const) {
      figures.push(pair(M, `${label} ${p} @ ${o.manyRate} msg/s`, "ms", "lower", { "edge-chat": r?.[kind][p], baseline: b?.[kind][p] }));
    }
  }
  figures.push(pair(M, `server CPU per message @ ${o.manyRate} msg/s`, "ms", "lower", { "edge-chat": r?.serverCpuMsPerMessage, baseline: b?.serverCpuMsPerMessage }));
  figures.push(pair(M, `deliveries/s @ ${o.manyRate} msg/s`, "deliveries/s", "higher", { "edge-chat": r?.deliveriesPerSecond, baseline: b?.deliveriesPerSecond }));
  figures.push(...unitFigures(M, `@ ${o.manyRate} msg/s`, { "edge-chat": r, baseline: b }));
  return { figures, details: { conversations: rooms.length, members: o.manyMembers, rate: o.manyRate, runs } };
}

// ---- idle memory -------------------------------------------------------------

/**
 * Each kind of socket is measured on a fresh pair of servers: RSS only shows what a
 * process had to grow by, and memory freed by objects an earlier phase woke and evicted
 * would be reused, making whatever is measured second look cheaper.
 */
export async function memory(ctx: Ctx): Promise<ScenarioResult> {
  const o = ctx.o;
  const members = o.manyMembers;
  const conversations = Math.ceil(o.memorySockets / members);
  const MB = (b: number) => Math.round((b / 1e6) * 100) / 100;
  const perKind: Record<string, PerTarget<{ awakeMBPer1000: number; idleMBPer1000: number }>> = {};
  const samples: Record<string, { phase: string; rssMB: Record<string, number> }[]> = {};
  const timelines: Record<string, Record<string, number[]>> = {};
  let n = 0;

  for (const kind of o.memoryKinds) {
    const what = kind === "conv" ? "conversation sockets" : "device sockets";
    progress(`memory (${what}): fresh servers; ${conversations} groups of ${members} created through the API`);
    const fresh = await ctx.freshServers();
    try {
      const sub: Ctx = { ...ctx, accounts: fresh.accounts, targets: fresh.targets, layouts: new Map() };
      const { rooms } = await manyLayout(sub, conversations, members);
      const pairs = rooms.flatMap((room) => room.members.map((u) => ({ room, u }))).slice(0, o.memorySockets);
      n = pairs.length;
      for (const t of sub.targets) await inParallel(rooms, 8, (room) => t.prepare(room));
      const rss = () => Object.fromEntries(sub.targets.map((t) => [t.name, rssBytes(t.server.pid)])) as Record<Target["name"], number>;
      const show = (r: Record<string, number>) => sub.targets.map((t) => `${t.name} ${MB(r[t.name]!)} MB`).join(", ");

      progress(`  waiting ${o.idleWait}s so that setup's objects go idle first`);
      await sleep(o.idleWait * 1000);
      const before = rss();
      progress(`  RSS before: ${show(before)}`);
      const opened: string[] = [];
      for (const t of sub.targets) {
        const tag = tagOf(t);
        const specs = pairs.map(({ room, u }, i) => ({
          key: `${tag}.mem.${kind}${i}`,
          url: kind === "conv" ? t.convUrl(room, u) : t.syncUrl(u),
          kind,
          user: u.userId,
        }));
        await openAll(sub, t, what, specs);
        opened.push(...specs.map((s) => s.key));
      }
      const awake = rss();
      progress(`  RSS right after opening ${n} per server: ${show(awake)}; idle ${o.idleWait}s…`);
      // RSS once a second while idle: the drop after ~10 s is the runtime evicting idle objects.
      const timeline: Record<string, number[]> = Object.fromEntries(sub.targets.map((t) => [t.name, []]));
      for (let i = 0; i < o.idleWait; i++) {
        await sleep(1000);
        const r = rss();
        for (const t of sub.targets) timeline[t.name]!.push(MB(r[t.name]!));
      }
      const idle = rss();
      const open = await ctx.pool.openCount();
      progress(`  RSS after ${o.idleWait}s idle: ${show(idle)} (${open} of ${opened.length} sockets still open)`);
      if (open < opened.length) throw new Error(`only ${open} of ${opened.length} idle sockets stayed open`);
      await ctx.pool.close(opened);

      timelines[kind] = timeline;
      samples[kind] = [
        { phase: "before", rssMB: Object.fromEntries(Object.entries(before).map(([k, v]) => [k, MB(v)])) },
        { phase: "open", rssMB: Object.fromEntries(Object.entries(awake).map(([k, v]) => [k, MB(v)])) },
        { phase: "idle", rssMB: Object.fromEntries(Object.entries(idle).map(([k, v]) => [k, MB(v)])) },
      ];
      perKind[kind] = {};
      for (const t of sub.targets) {
        perKind[kind]![t.name] = {
          awakeMBPer1000: MB(((awake[t.name]! - before[t.name]!) / n) * 1000),
          idleMBPer1000: MB(((idle[t.name]! - before[t.name]!) / n) * 1000),
        };
      }
    } finally {
      await fresh.dispose();
    }
  }

  const figures: Figure[] = [];
  for (const kind of o.memoryKinds) {
    const label = kind === "conv" ? `conversation sockets (${members} per conversation)` : "device sockets (one per user, one inbox each)";
    figures.push(
      pair("memory", `RSS per 1,000 idle ${label}, after ${o.idleWait}s idle`, "MB", "lower", {
        "edge-chat": perKind[kind]!["edge-chat"]?.idleMBPer1000,
        baseline: perKind[kind]!.baseline?.idleMBPer1000,
      }),
      pair("memory", `RSS per 1,000 ${label}, right after opening`, "MB", "lower", {
        "edge-chat": perKind[kind]!["edge-chat"]?.awakeMBPer1000,
        baseline: perKind[kind]!.baseline?.awakeMBPer1000,
      }),
    );
  }
  return { figures, details: { sockets: n, idleWaitSeconds: o.idleWait, samples, perKind, idleTimelineMB: timelines } };
}

export const SCENARIO_FUNCTIONS = { memory, sustained, room, fanout, many } as const;
