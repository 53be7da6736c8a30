/**
 * `npm run capacity [-- --results bench/results/latest.json]`: what the seeds' load would
 * cost on Cloudflare, from the units the bench measured per message (bench/lib/measure.ts,
 * worker/lib/meter.ts) and the list prices in ./prices.ts. Printed beside the seeds'
 * napkin figures (/work/shared/seeds), with where the model stops being right.
 *
 * Per-message units are fitted as fixed + per-inbox from two unbatched bench steps with
 * different member counts (room with device sockets at its lowest rate: 20 inboxes;
 * fan-out steady: 256), because real conversations are sparse: each message reaches every
 * inbox in a batch of its own.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PRICES, PRICES_READ_ON, SOURCES } from "./prices.ts";

const { values } = parseArgs({ options: { results: { type: "string" } } });
const resultsPath = values.results ?? join(import.meta.dirname, "..", "results", "latest.json");

// ---- the seeds' load -----------------------------------------------------------

const LOAD = {
  dau: 500e6,
  messagesPerUserPerDay: [40, 50] as const,
  groupShare: 0.3,
  groupMembers: 10,
  maxGroupMembers: 256,
  directMembers: 2,
  concurrentConnections: [100e6, 150e6] as const,
  mediaShare: 0.2,
  mediaBytes: 2e6,
  hotRetentionDays: 90,
  /** Busiest second over the average (the seeds: 25 B/day ↔ 750 k msg/s at peak ≈ 2.6). */
  peakFactor: 2.6,
  /** Assumptions the seeds leave open. */
  connectsPerUserPerDay: 20,
  httpRequestsPerUserPerDay: 30,
  /** Recipients with no open socket get a Web Push (one queue message each). */
  offlineRecipientShare: 0.7,
  /** Stored bytes per message row in its conversation, and per log row in each inbox (JSON, indexes, page overhead). */
  conversationRowBytes: 400,
  inboxRowBytes: 500,
} as const;

const SEEDS = {
  gatewayServers: "1,000–10,000 WebSocket gateway servers (100 k connections each)",
  connectionRam: "1 TB of connection RAM (100 M × 10 KB)",
  storage: "~3 PB a year (90-day hot ≈ 1 PB with media)",
} as const;

// ---- measured units --------------------------------------------------------------

interface Units {
  doRpc: number;
  wsIn: number;
  alarms: number;
  sqlRowsRead: number;
  sqlRowsWritten: number;
  d1Queries: number;
  workerInvocations: number;
}
interface Step {
  rate: number;
  sent: number;
  units: Units | null;
  serverCpuMsPerMessage: number | null;
}

interface PerMessage {
  /** Fixed per message (the conversation's own work) and per inbox reached. */
  fixed: Record<"rpc" | "rowsRead" | "rowsWritten" | "cpuMs", number>;
  perInbox: Record<"rpc" | "rowsRead" | "rowsWritten" | "cpuMs", number>;
  source: string;
}

function measured(path: string): PerMessage {
  const fallback: PerMessage = {
    // From the code's structure when no results are at hand: one lease RPC and ~9 rows per send,
    // one ingest RPC writing ~7 rows (log row + index + sequence, list row + index, position) per inbox.
    fixed: { rpc: 1, rowsRead: 9, rowsWritten: 7, cpuMs: 1 },
    perInbox: { rpc: 1, rowsRead: 13, rowsWritten: 7, cpuMs: 0.5 },
    source: "structural estimate (no bench results found)",
  };
  let json: { scenarios?: Record<string, { details?: Record<string, unknown> }> };
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return fallback;
  }
  const room = (json.scenarios?.room?.details?.devices as { runs?: Record<string, { steps: Step[] }> } | undefined)?.runs?.["edge-chat"]?.steps?.[0];
  const roomMembers = (json.scenarios?.room?.details?.members as number | undefined) ?? 20;
  const fan = (json.scenarios?.fanout?.details?.runs as Record<string, { steady: Step }> | undefined)?.["edge-chat"]?.steady;
  const fanMembers = (json.scenarios?.fanout?.details?.members as number | undefined) ?? 256;
  if (!room?.units || !fan?.units) return fallback;
  const per = (s: Step) => ({
    rpc: s.units!.doRpc / s.sent,
    rowsRead: s.units!.sqlRowsRead / s.sent,
    rowsWritten: s.units!.sqlRowsWritten / s.sent,
    cpuMs: s.serverCpuMsPerMessage ?? 0,
  });
  const a = per(room);
  const b = per(fan);
  const slope = (k: keyof typeof a) => Math.max(0, (b[k] - a[k]) / (fanMembers - roomMembers));
  const perInbox = { rpc: slope("rpc"), rowsRead: slope("rowsRead"), rowsWritten: slope("rowsWritten"), cpuMs: slope("cpuMs") };
  const fixed = {
    rpc: Math.max(0, a.rpc - roomMembers * perInbox.rpc),
    rowsRead: Math.max(0, a.rowsRead - roomMembers * perInbox.rowsRead),
    rowsWritten: Math.max(0, a.rowsWritten - roomMembers * perInbox.rowsWritten),
    // Local CPU per message carries the process's idle work too; never below a plausible floor.
    cpuMs: Math.max(0.5, a.cpuMs - roomMembers * perInbox.cpuMs),
  };
  return { fixed, perInbox, source: `${path}: room+devices @ ${room.rate} msg/s (${roomMembers} inboxes) and fan-out steady (${fanMembers} inboxes)` };
}

// ---- the model -------------------------------------------------------------------

const m = measured(resultsPath);

/** The bench's "RSS per 1,000 idle device sockets" (MB), if the results have it. */
function idleSocketMB(path: string): number | null {
  try {
    const figures = (JSON.parse(readFileSync(path, "utf8")) as { figures: { name: string; real: number | null }[] }).figures;
    return figures.find((f) => f.name.startsWith("RSS per 1,000 idle device sockets"))?.real ?? null;
  } catch {
    return null;
  }
}
const socketMB = idleSocketMB(resultsPath);
const inboxesPerMessage = (1 - LOAD.groupShare) * LOAD.directMembers + LOAD.groupShare * LOAD.groupMembers;
const recipientsPerMessage = inboxesPerMessage - 1;
const DAY = 86_400;
const MONTH_DAYS = 30;

interface Row {
  component: string;
  quantity: string;
  monthly: number;
}

function model(messagesPerUser: number, connections: number) {
  const msgsPerDay = LOAD.dau * messagesPerUser;
  const avgPerSecond = msgsPerDay / DAY;
  const peakPerSecond = avgPerSecond * LOAD.peakFactor;
  const msgsPerMonth = msgsPerDay * MONTH_DAYS;
  const unit = (k: "rpc" | "rowsRead" | "rowsWritten" | "cpuMs") => m.fixed[k] + inboxesPerMessage * m.perInbox[k];

  // Durable Object requests: RPCs, incoming socket messages (1/20), socket connects, HTTP calls forwarded to objects.
  const connectsPerMonth = LOAD.dau * LOAD.connectsPerUserPerDay * MONTH_DAYS;
  const httpPerMonth = LOAD.dau * LOAD.httpRequestsPerUserPerDay * MONTH_DAYS;
  const doRequests = msgsPerMonth * (unit("rpc") + 1 / PRICES.durableObjects.webSocketMessagesPerRequest) + connectsPerMonth * 2 + httpPerMonth;
  const doRequestsPeak = peakPerSecond * (unit("rpc") + 1);
  // Active (billed) time: the CPU each message costs, as a floor for wall-clock time.
  const activeSeconds = (msgsPerMonth * unit("cpuMs")) / 1000;
  const gbSeconds = activeSeconds * PRICES.durableObjects.gbPerObject;
  const rowsWritten = msgsPerMonth * unit("rowsWritten");
  const rowsRead = msgsPerMonth * unit("rowsRead");
  const hotBytes = msgsPerDay * LOAD.hotRetentionDays * (LOAD.conversationRowBytes + inboxesPerMessage * LOAD.inboxRowBytes);
  const workerRequests = connectsPerMonth + httpPerMonth;
  const workerCpuMs = workerRequests * 2; // token check + routing; PBKDF2 logins are rare and left out
  const d1Queries = workerRequests; // the device look-up of every authenticated request and upgrade
  const mediaPerDay = msgsPerDay * LOAD.mediaShare;
  const mediaBytesPerDay = mediaPerDay * LOAD.mediaBytes;
  const r2Stored = mediaBytesPerDay * LOAD.hotRetentionDays;
  const r2ClassA = mediaPerDay * MONTH_DAYS;
  const r2ClassB = mediaPerDay * recipientsPerMessage * MONTH_DAYS;
  const egressBytesPerDay = mediaBytesPerDay * recipientsPerMessage + msgsPerDay * recipientsPerMessage * 1_000;
  const pushes = msgsPerMonth * recipientsPerMessage * LOAD.offlineRecipientShare;

  const P = PRICES;
  const rows: Row[] = [
    { component: "DO requests", quantity: `${fmt(doRequests)}/month (${fmt(doRequestsPeak)}/s at peak)`, monthly: (doRequests / 1e6) * P.durableObjects.perMillionRequests },
    { component: "DO duration", quantity: `${fmt(gbSeconds)} GB-s/month`, monthly: (gbSeconds / 1e6) * P.durableObjects.perMillionGbSeconds },
    { component: "DO SQLite rows written", quantity: `${fmt(rowsWritten)}/month`, monthly: (rowsWritten / 1e6) * P.durableObjects.perMillionRowsWritten },
    { component: "DO SQLite rows read", quantity: `${fmt(rowsRead)}/month`, monthly: (rowsRead / 1e6) * P.durableObjects.perMillionRowsRead },
    { component: "DO SQLite storage (hot, 90 days)", quantity: `${bytes(hotBytes)}`, monthly: (hotBytes / 1e9) * P.durableObjects.perGbMonth },
    { component: "Worker requests + CPU", quantity: `${fmt(workerRequests)}/month`, monthly: (workerRequests / 1e6) * P.workers.perMillionRequests + (workerCpuMs / 1e6) * P.workers.perMillionCpuMs },
    { component: "D1 (device look-ups)", quantity: `${fmt(d1Queries)} queries/month`, monthly: (d1Queries / 1e6) * P.d1.perMillionRowsRead },
    { component: "R2 media storage (90 days)", quantity: `${bytes(r2Stored)}`, monthly: (r2Stored / 1e9) * P.r2.perGbMonth },
    { component: "R2 media writes (class A)", quantity: `${fmt(r2ClassA)}/month`, monthly: (r2ClassA / 1e6) * P.r2.perMillionClassA },
    { component: "R2 media reads (class B)", quantity: `${fmt(r2ClassB)}/month`, monthly: (r2ClassB / 1e6) * P.r2.perMillionClassB },
    { component: "Queues (Web Push)", quantity: `${fmt(pushes)} pushes/month`, monthly: (pushes * P.queues.operationsPerMessage * P.queues.perMillionOperations) / 1e6 },
    { component: "Egress", quantity: `${bytes(egressBytesPerDay)}/day`, monthly: egressBytesPerDay * MONTH_DAYS * (P.r2.egressPerGb / 1e9) },
  ];
  // Objects in memory: those with an event in the last ~10 s (idle ones hibernate or are evicted).
  const conversationsAlive = Math.min(peakPerSecond * 10, LOAD.dau);
  const inboxesAlive = Math.min(peakPerSecond * inboxesPerMessage * 10, LOAD.dau);
  return {
    msgsPerDay,
    avgPerSecond,
    peakPerSecond,
    rows,
    total: rows.reduce((s, r) => s + r.monthly, 0),
    conversationsAlive,
    inboxesAlive,
    connections,
    hotBytes,
    r2Stored,
    yearlyBytes: (msgsPerDay * (LOAD.conversationRowBytes + inboxesPerMessage * LOAD.inboxRowBytes) + mediaBytesPerDay) * 365,
  };
}

function fmt(n: number): string {
  for (const [d, s] of [[1e12, " T"], [1e9, " B"], [1e6, " M"], [1e3, " k"]] as const) if (n >= d) return `${(n / d).toFixed(n / d >= 100 ? 0 : 1)}${s}`;
  return n.toFixed(n >= 10 ? 0 : 2);
}
function bytes(n: number): string {
  for (const [d, s] of [[1e18, " EB"], [1e15, " PB"], [1e12, " TB"], [1e9, " GB"], [1e6, " MB"]] as const) if (n >= d) return `${(n / d).toFixed(1)}${s}`;
  return `${n.toFixed(0)} B`;
}
const usd = (n: number) => `$${n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0)}`;

const low = model(LOAD.messagesPerUserPerDay[0], LOAD.concurrentConnections[0]);
const high = model(LOAD.messagesPerUserPerDay[1], LOAD.concurrentConnections[1]);
const out: string[] = [];
out.push(`Capacity model — prices read ${PRICES_READ_ON}; units from ${m.source}`);
out.push("");
out.push(
  `Load: ${fmt(LOAD.dau)} DAU × ${LOAD.messagesPerUserPerDay.join("–")} msgs/day = ${fmt(low.msgsPerDay)}–${fmt(high.msgsPerDay)} msgs/day; ` +
    `${fmt(low.avgPerSecond)}–${fmt(high.avgPerSecond)} msg/s average, ${fmt(low.peakPerSecond)}–${fmt(high.peakPerSecond)} at peak (×${LOAD.peakFactor}); ` +
    `${Math.round(LOAD.groupShare * 100)} % group (${LOAD.groupMembers} members), so ${inboxesPerMessage.toFixed(1)} inboxes per message.`,
);
out.push(
  `Measured per message: ${m.fixed.rpc.toFixed(2)} RPC + ${m.fixed.rowsWritten.toFixed(1)} rows written + ${m.fixed.cpuMs.toFixed(2)} ms fixed; ` +
    `per inbox ${m.perInbox.rpc.toFixed(2)} RPC, ${m.perInbox.rowsWritten.toFixed(1)} rows written, ${m.perInbox.rowsRead.toFixed(1)} rows read, ${m.perInbox.cpuMs.toFixed(2)} ms.`,
);
out.push("");
out.push("| component | quantity (40 msgs/day) | $/month (40) | quantity (50 msgs/day) | $/month (50) |");
out.push("|---|---|---:|---|---:|");
low.rows.forEach((r, i) => out.push(`| ${r.component} | ${r.quantity} | ${usd(r.monthly)} | ${high.rows[i]!.quantity} | ${usd(high.rows[i]!.monthly)} |`));
out.push(`| **total** | | **${usd(low.total)}** | | **${usd(high.total)}** |`);
out.push("");
out.push("| | this model | the seeds' napkin |");
out.push("|---|---|---|");
out.push(`| connections | ${fmt(low.connections)}–${fmt(high.connections)} hibernated WebSockets held by Cloudflare's edge: no gateway servers to run | ${SEEDS.gatewayServers} |`);
out.push(
  `| connection memory | not billed while hibernated; ${
    socketMB === null
      ? "see the bench's RSS per 1,000 idle sockets"
      : `locally an idle device socket grew workerd by ${Math.round(socketMB)} KB, so ${bytes(low.connections * socketMB * 1000)}–${bytes(high.connections * socketMB * 1000)} across Cloudflare's machines (workerd and Miniflare's own per-socket cost included)`
  } | ${SEEDS.connectionRam} |`,
);
out.push(`| objects in memory at peak | ~${fmt(low.conversationsAlive)}–${fmt(high.conversationsAlive)} conversations, ~${fmt(low.inboxesAlive)}–${fmt(high.inboxesAlive)} inboxes (an event in the last ~10 s) | — |`);
out.push(
  `| storage | hot SQLite ${bytes(low.hotBytes)}–${bytes(high.hotBytes)} (90 days of text, ${inboxesPerMessage.toFixed(1)} copies: one per inbox); R2 ${bytes(low.r2Stored)}–${bytes(high.r2Stored)} of media; ${bytes(low.yearlyBytes)}–${bytes(high.yearlyBytes)} written a year, almost all media (20 % × 2 MB: the seeds' own table has 8,800 TB/day of media, written there as "9 TB/day") | ${SEEDS.storage} |`,
);
out.push("");
out.push("Where the model is limited:");
out.push(
  "- Per-object throughput: one Durable Object is one thread (Cloudflare cites on the order of 1,000 simple requests/s). A 256-member group costs 256 inbox calls per message spread over 256 objects, but one conversation's sends are serialized: locally one room held the rate in bench/results/latest.md. A user's inbox fed by many busy groups at once is the hot spot.",
);
out.push(
  "- Duration is billed wall-clock while an object is active; the model uses the CPU the bench measured per message, a floor: production waits for replicated writes (the output gate) while the object stays active.",
);
out.push(
  "- Cold starts: an inbox idle for ~10 s is evicted and the next delivery re-creates it (constructor, schema check, SQLite open). Locally that is inside the measured CPU; in production it also adds latency, not modelled.",
);
out.push(
  "- Hibernated sockets: each object can hold many (per-user caps: MAX_SOCKETS_PER_USER, MAX_CONVERSATION_SOCKETS_PER_USER), and they cost no duration while idle; Cloudflare publishes no per-object socket limit to model, and socket connects are assumed (" +
    `${LOAD.connectsPerUserPerDay}/user/day).`,
);
out.push(
  `- Assumed, not from the seeds: ${LOAD.httpRequestsPerUserPerDay} HTTP calls/user/day, ${Math.round(LOAD.offlineRecipientShare * 100)} % of recipients offline (one push each), ${LOAD.conversationRowBytes} B per stored message and ${LOAD.inboxRowBytes} B per inbox log row, peak ×${LOAD.peakFactor}; media is 2 MB for every media message. List prices, no enterprise discounts.`,
);
out.push("");
out.push(`Sources: ${SOURCES.join(", ")}`);
process.stdout.write(`${out.join("\n")}\n`);
