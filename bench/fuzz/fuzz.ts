/**
 * A fuzz run: the real local server, honest users talking all along, attackers sending N
 * malformed or hostile cases (HTTP bodies, query strings, tokens, WebSocket frames and
 * handshakes) and flooders bursting into a conversation honest users share with them.
 *
 * The oracle counts crashes (5xx, hung requests, sockets dropped with 1006/1011, the server
 * dying), honest clients disturbed (a failed send, a message missing, duplicated or out of
 * order on a device socket, a socket closed) and things wrongly stored (anything in any
 * history that no valid request created, a rejected send stored, a value stored differently
 * from what was sent). Contract violations that are none of these (a wrong status or error
 * shape) are counted apart.
 */
import { Api } from "../../test/e2e/client.ts";
import { localTokenSecret, TestServer } from "../../test/e2e/server.ts";
import type { Case } from "./cases.ts";
import { forgeTokens, generateCase, type GenContext } from "./generators.ts";
import { HonestTraffic } from "./honest.ts";
import { Ledger, type Issue } from "./ledger.ts";
import { Rng } from "../lib/prng.ts";
import { Runner } from "./runner.ts";
import { verify } from "./verify.ts";
import { buildWorld } from "./world.ts";

export interface FuzzOptions {
  cases: number;
  seed: number;
  /** Cases in flight at once (a socket's cases still run one at a time). */
  concurrency: number;
  honestPairs: number;
  /** Honest users whose second device (a phone, never online) has a Web Push subscription. */
  subscribedPhones: number;
  attackers: number;
  flooders: number;
  /** Bursts of valid messages by the flooders into the mixed group, spread over the run. */
  floods: number;
  /** Messages per flooder per burst (their rate limit is 100 a minute). */
  floodSize: number;
  /** Each honest user sends one message per interval (keep it under 100 a minute). */
  honestIntervalMs: number;
  /** How long honest device sockets get to catch up at the end. */
  settleMs: number;
  /** A running server to use; otherwise one is started (and stopped). */
  server?: TestServer;
  log?: (line: string) => void;
}

export const DEFAULTS: Omit<FuzzOptions, "server" | "log"> = {
  cases: 10_000,
  seed: 1,
  concurrency: 8,
  honestPairs: 3,
  subscribedPhones: 2,
  attackers: 6,
  flooders: 4,
  floods: 2,
  floodSize: 100,
  honestIntervalMs: 1_000,
  settleMs: 20_000,
};

export interface FuzzReport {
  ok: boolean;
  config: Omit<FuzzOptions, "server" | "log">;
  startedAt: string;
  durationMs: number;
  phases: { setupMs: number; casesMs: number; verifyMs: number };
  throughput: { casesPerSecond: number; requestsPerSecond: number; framesPerSecond: number };
  counts: { crashes: number; disturbed: number; honestClientsDisturbed: number; wronglyStored: number; violations: number; devServerFailures: number };
  cases: { total: number; byCategory: Record<string, { cases: number; crash: number; violation: number; wrong: number; ms: number; maxMs: number; slowest?: Record<string, unknown>; answers: Record<string, number> }> };
  honest: { users: number; sendAttempts: number; acknowledged: number; pushesReceivedByFakeService: number };
  server: {
    baseUrl: string;
    logFile: string;
    reloads: number;
    /** GET /v1/health every 2 s during the run: the slowest answer, and how many took over 1 s. */
    health: { checks: number; maxMs: number; slowChecks: number };
    logErrors: number;
    logErrorSamples: string[];
  };
  issues: Issue[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const HEALTH_TIMEOUT_MS = 30_000;

export async function runFuzz(options: Partial<FuzzOptions> = {}): Promise<FuzzReport> {
  const opts = { ...DEFAULTS, ...options };
  const log = opts.log ?? ((line: string) => console.log(line));
  const started = Date.now();
  const ownServer = !opts.server;
  const server = opts.server ?? (await TestServer.start());
  const logStart = server.log(1e9).length;
  const api = new Api(server.baseUrl);
  const ledger = new Ledger();
  log(`server ${server.baseUrl} (log ${server.logFile})`);

  let honest: HonestTraffic | null = null;
  // The server is dead when it refuses connections, answers health with an error, or gives
  // no answer for a long time; a slow answer under load is a stall, reported but no crash.
  const health = { checks: 0, maxMs: 0, slowChecks: 0 };
  let healthy = true;
  let monitoring = true;
  const monitor = (async () => {
    while (monitoring) {
      const t0 = Date.now();
      try {
        const res = await fetch(`${server.baseUrl}/v1/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
        await res.text();
        if (res.status !== 200) throw new Error(`health answered ${res.status}`);
        healthy = true;
      } catch (err) {
        if (healthy) ledger.add("crash", "server", `server unhealthy: ${(err as Error).message} after ${Date.now() - t0} ms`);
        healthy = false;
      }
      const ms = Date.now() - t0;
      health.checks += 1;
      health.maxMs = Math.max(health.maxMs, ms);
      if (ms > 1_000) health.slowChecks += 1;
      await sleep(2_000);
    }
  })();

  let setupMs = 0;
  let casesMs = 0;
  let verifyMs = 0;
  let world: Awaited<ReturnType<typeof buildWorld>> | null = null;
  try {
    world = await buildWorld(api, localTokenSecret(), opts, log);
    const ctx: GenContext = { world, forged: await forgeTokens(world) };
    setupMs = Date.now() - started;

    honest = new HonestTraffic(world, api, ledger, opts.honestIntervalMs);
    honest.start();
    const runner = new Runner(world, api, ledger, { floodSize: opts.floodSize });

    const floodAt = new Set(Array.from({ length: opts.floods }, (_, k) => Math.floor((opts.cases * (k + 1)) / (opts.floods + 1))));
    const caseAt = (i: number): Case => (floodAt.has(i) ? { kind: "flood", index: i, category: "flood", variant: `${opts.flooders}×${opts.floodSize}` } : generateCase(ctx, Rng.forCase(opts.seed, i), i));

    const t0 = Date.now();
    let next = 0;
    let done = 0;
    const progress = setInterval(() => {
      const s = (Date.now() - t0) / 1000;
      log(
        `  ${done}/${opts.cases} cases, ${(done / s).toFixed(0)}/s; crashes ${ledger.counts.crash}, disturbed ${ledger.counts.disturbed}, wrongly stored ${ledger.counts.wrong}, violations ${ledger.counts.violation}; honest sends ${honest!.sent.length}`,
      );
    }, 10_000);
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= opts.cases) return;
        const c = caseAt(i);
        try {
          await runner.run(c);
        } catch (err) {
          ledger.add("crash", c.category, `the harness failed on case ${i}: ${(err as Error).stack?.slice(0, 400)}`);
        }
        done += 1;
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
    clearInterval(progress);
    casesMs = Date.now() - t0;
    log(`cases done in ${(casesMs / 1000).toFixed(1)} s`);

    // Let the honest clients talk a little longer after the storm, then stop them.
    await sleep(2_000);
    await honest.stop();
    const v0 = Date.now();
    await verify(world, api, ledger, honest, { settleMs: opts.settleMs, log });
    verifyMs = Date.now() - v0;
  } finally {
    if (honest) await honest.stop();
    monitoring = false;
    await monitor;
    if (world) {
      const sockets = [
        ...world.honest.flatMap((h) => [h.sync, ...h.convWs.values()]),
        ...world.attackers.flatMap((a) => [a.sync, a.ownWs, a.mixedWs]),
      ];
      await Promise.all(sockets.map((s) => s?.close().catch(() => undefined)));
      world.pushServer.close();
    }
  }

  const fullLog = server.log(1e9).slice(logStart);
  const errorLines = fullLog.split("\n").filter((l) => /Uncaught|unhandled error|\[ERROR\]|exceeded|Internal Error/i.test(l));
  const reloads = server.reloads();
  const logFile = server.logFile;
  if (ownServer) await server.dispose();

  const durationMs = Date.now() - started;
  const byCategory = Object.fromEntries([...ledger.categories.entries()].sort(([a], [b]) => a.localeCompare(b)));
  const total = [...ledger.categories.values()].reduce((n, s) => n + s.cases, 0);
  const counts = {
    crashes: ledger.counts.crash,
    disturbed: ledger.counts.disturbed,
    honestClientsDisturbed: ledger.disturbedUsers.size,
    wronglyStored: ledger.counts.wrong,
    violations: ledger.counts.violation,
    devServerFailures: ledger.counts.devserver,
  };
  const secs = Math.max(0.001, casesMs / 1000);
  return {
    ok: counts.crashes === 0 && counts.disturbed === 0 && counts.wronglyStored === 0,
    config: { ...DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([k]) => k !== "server" && k !== "log")) } as FuzzReport["config"],
    startedAt: new Date(started).toISOString(),
    durationMs,
    phases: { setupMs, casesMs, verifyMs },
    throughput: { casesPerSecond: round(total / secs), requestsPerSecond: round(ledger.requests / secs), framesPerSecond: round(ledger.frames / secs) },
    counts,
    cases: { total, byCategory },
    honest: { users: world?.honest.length ?? 0, sendAttempts: honest?.attempts ?? 0, acknowledged: honest?.sent.length ?? 0, pushesReceivedByFakeService: world?.pushesReceived ?? 0 },
    server: { baseUrl: server.baseUrl, logFile, reloads, health, logErrors: errorLines.length, logErrorSamples: [...new Set(errorLines.map((l) => l.replace(/\x1b\[[0-9;]*m/g, "").trim()))].slice(0, 20) },
    issues: ledger.issues,
  };
}

const round = (n: number) => Math.round(n * 10) / 10;

/** The report as a few lines for a terminal. */
export function summarize(r: FuzzReport): string {
  const lines: string[] = [];
  lines.push(`fuzz: ${r.cases.total} cases (seed ${r.config.seed}) in ${(r.durationMs / 1000).toFixed(1)} s (cases phase ${(r.phases.casesMs / 1000).toFixed(1)} s)`);
  lines.push(`throughput: ${r.throughput.casesPerSecond} cases/s, ${r.throughput.requestsPerSecond} HTTP requests/s, ${r.throughput.framesPerSecond} WS frames/s`);
  lines.push("cases by category:");
  for (const [cat, s] of Object.entries(r.cases.byCategory)) {
    const answers = Object.entries(s.answers)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([k, n]) => `${k}×${n}`)
      .join(" ");
    lines.push(`  ${cat.padEnd(26)} ${String(s.cases).padStart(6)}  avg ${String(Math.round(s.ms / Math.max(1, s.cases))).padStart(5)} ms  max ${String(s.maxMs).padStart(6)} ms   ${answers}`);
  }
  lines.push(`honest: ${r.honest.users} users, ${r.honest.acknowledged}/${r.honest.sendAttempts} sends acknowledged; ${r.honest.pushesReceivedByFakeService} pushes reached the fake push service`);
  lines.push(
    `server: health answered in at most ${r.server.health.maxMs} ms (${r.server.health.slowChecks}/${r.server.health.checks} checks over 1 s); ${r.server.logErrors} error line(s) in its log; hot reloads: ${r.server.reloads}`,
  );
  lines.push(
    `CRASHES ${r.counts.crashes}   HONEST CLIENTS DISTURBED ${r.counts.disturbed} (${r.counts.honestClientsDisturbed} users)   WRONGLY STORED ${r.counts.wronglyStored}   (other contract violations ${r.counts.violations}; local dev-server proxy failures ${r.counts.devServerFailures})`,
  );
  const byKind = new Map<string, Issue[]>();
  for (const i of r.issues) byKind.set(i.kind, [...(byKind.get(i.kind) ?? []), i]);
  for (const [kind, issues] of byKind) {
    const distinct = new Map<string, number>();
    for (const i of issues) {
      const k = `${i.category}: ${i.detail.replace(/[a-z]_[a-z2-7]{26}/g, "<id>").replace(/\d+/g, "N").slice(0, 200)}`;
      distinct.set(k, (distinct.get(k) ?? 0) + 1);
    }
    lines.push(`${kind}:`);
    for (const [k, n] of [...distinct.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12)) lines.push(`  ${String(n).padStart(4)}× ${k}`);
  }
  lines.push(r.ok ? "PASS" : "FAIL");
  return lines.join("\n");
}
