/** One measured step: an open-loop burst of sends, the wait for its deliveries, the numbers. */
import type { Pool } from "./pool.ts";
import { cpuMs, readMeter, type MeterCounts, type ServerHandle } from "./server.ts";
import { summarize, type Summary } from "./stats.ts";

/** Called before every measured step (run.ts starts the --profile profiler at the first). */
export const hooks: { beforeStep: (() => Promise<void>) | null } = { beforeStep: null };

export interface StepOptions {
  contentBytes: number;
  /** How long to wait for outstanding acks after the last send. */
  drainMs: number;
  /** How long to wait for outstanding deliveries after the acks. */
  deliveryWaitMs: number;
  /** Stop sending once an ack has been owed this long (0: never). */
  abortAfterMs: number;
}

export interface StepResult {
  stage: string;
  /** Offered rate, messages per second. */
  rate: number;
  planned: number;
  sent: number;
  /** The client stopped early because acks were owed too long (server saturated). */
  aborted: boolean;
  ack: Summary;
  conv: Summary;
  sync: Summary;
  errors: Record<string, number>;
  /** Deliveries (conversation + device sockets, other members only) per second, first send → last delivery. */
  deliveriesPerSecond: number;
  /** Acks per second over the same span. */
  acksPerSecond: number;
  spanMs: number;
  /** How late the client was against its schedule: a large value means the client, not the server, was the limit. */
  clientLagMaxMs: number;
  clientLagMeanMs: number;
  /** CPU time the server's workerd used from the first send until the deliveries were in, per message sent. */
  serverCpuMsPerMessage: number | null;
  /** What the server's meter counted over the step (the billed units; null if it has no meter). */
  units: MeterCounts | null;
}

export interface Expect {
  /** Conversation-socket deliveries each message should cause (other sockets on the conversation). */
  convPerMessage: number;
  /** Device-socket deliveries each message should cause (other users' device sockets). */
  syncPerMessage: number;
}

export async function step(
  pool: Pool,
  server: Pick<ServerHandle, "pid" | "url">,
  stage: string,
  senders: string[],
  rate: number,
  count: number,
  expect: Expect,
  opts: StepOptions,
): Promise<StepResult> {
  if (hooks.beforeStep) await hooks.beforeStep();
  const meter0 = await readMeter(server.url);
  const cpu0 = cpuMs(server.pid);
  const load = await pool.load(stage, senders, rate, count, {
    contentBytes: opts.contentBytes,
    drainMs: opts.drainMs,
    abortAfterMs: opts.abortAfterMs,
  });
  const acked = load.sent - load.pending;
  await pool.waitDeliveries(stage, acked * expect.convPerMessage, acked * expect.syncPerMessage, opts.deliveryWaitMs);
  // Work a server defers past the deliveries (e.g. inboxes with no device socket) belongs to this step.
  await quiet(server.pid);
  const cpu1 = cpuMs(server.pid);
  const meter1 = await readMeter(server.url);
  const m = await pool.collect(stage);
  const convMissing = Math.max(0, m.sent * expect.convPerMessage - m.conv.length);
  const syncMissing = Math.max(0, m.sent * expect.syncPerMessage - m.sync.length);
  const span = m.lastRecv - m.firstSend;
  const spanS = span > 0 ? span / 1000 : NaN;
  return {
    stage,
    rate,
    planned: count,
    sent: m.sent,
    aborted: load.aborted,
    ack: summarize(m.ack, m.unacked),
    conv: summarize(m.conv, convMissing),
    sync: summarize(m.sync, syncMissing),
    errors: m.errors,
    deliveriesPerSecond: Number.isFinite(spanS) ? Math.round((m.conv.length + m.sync.length) / spanS) : 0,
    acksPerSecond: Number.isFinite(spanS) ? Math.round(m.ack.length / spanS) : 0,
    spanMs: Math.round(span),
    clientLagMaxMs: Math.round(m.lagMax * 10) / 10,
    clientLagMeanMs: Math.round(m.lagMean * 100) / 100,
    serverCpuMsPerMessage: m.sent ? Math.round(((cpu1 - cpu0) / m.sent) * 100) / 100 : null,
    units: meter0 && meter1 ? meterDiff(meter0, meter1) : null,
  };
}

/** Waits (at most `maxMs`) until the process used at most one 10 ms tick of CPU in a 250 ms window. */
async function quiet(pid: number, maxMs = 3_000): Promise<void> {
  const t0 = performance.now();
  let prev = cpuMs(pid);
  while (performance.now() - t0 < maxMs) {
    await new Promise((r) => setTimeout(r, 250));
    const cur = cpuMs(pid);
    if (cur - prev <= 10) return;
    prev = cur;
  }
}

/** after − before; the meter's own GET is one Worker invocation, not counted. */
function meterDiff(a: MeterCounts, b: MeterCounts): MeterCounts {
  const byMethod: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.doRpcByMethod)) {
    const d = v - (a.doRpcByMethod[k] ?? 0);
    if (d) byMethod[k] = d;
  }
  return {
    workerInvocations: b.workerInvocations - a.workerInvocations - 1,
    doRpc: b.doRpc - a.doRpc,
    doRpcByMethod: byMethod,
    wsIn: b.wsIn - a.wsIn,
    alarms: b.alarms - a.alarms,
    sqlStatements: b.sqlStatements - a.sqlStatements,
    sqlRowsRead: b.sqlRowsRead - a.sqlRowsRead,
    sqlRowsWritten: b.sqlRowsWritten - a.sqlRowsWritten,
    d1Queries: b.d1Queries - a.d1Queries,
    d1RowsRead: b.d1RowsRead - a.d1RowsRead,
    d1RowsWritten: b.d1RowsWritten - a.d1RowsWritten,
    ...(b.sqlByStatement ? { sqlByStatement: statementDiff(a.sqlByStatement ?? {}, b.sqlByStatement) } : {}),
  };
}

/** Per-statement counts over a step, busiest (rows read + written) first. */
function statementDiff(a: NonNullable<MeterCounts["sqlByStatement"]>, b: NonNullable<MeterCounts["sqlByStatement"]>): NonNullable<MeterCounts["sqlByStatement"]> {
  const rows = Object.entries(b)
    .map(([k, v]) => [k, { n: v.n - (a[k]?.n ?? 0), read: v.read - (a[k]?.read ?? 0), written: v.written - (a[k]?.written ?? 0) }] as const)
    .filter(([, v]) => v.n > 0)
    .sort((x, y) => y[1].read + y[1].written - (x[1].read + x[1].written));
  return Object.fromEntries(rows);
}
