/**
 * `npm run bench -- [options]` (see bench/README.md, or --help).
 *
 * Starts edge-chat and the baseline in their own workerd processes through Miniflare,
 * forks the client processes, runs the scenarios against each server in turn, and writes
 * bench/results/NAME.{json,md,svg}.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseOptions, USAGE, type ScenarioName } from "./lib/options.ts";
import { hooks } from "./lib/measure.ts";
import { Pool } from "./lib/pool.ts";
import { freePort, Profiler, profileSummary, type ProfileSummary } from "./lib/profile.ts";
import { consoleTable, markdown, svg, type RunMeta } from "./lib/report.ts";
import { SCENARIO_FUNCTIONS, type Ctx, type Figure, type ScenarioResult } from "./lib/scenarios.ts";
import { makeSecrets, MINIFLARE_VERSION, startBaseline, startReal, type ServerHandle } from "./lib/server.ts";
import { Accounts, baselineTarget, realTarget } from "./lib/setup.ts";
import { jsonSafe } from "./lib/stats.ts";
import { BENCH, now, progress } from "./lib/util.ts";

let o;
try {
  o = parseOptions(process.argv.slice(2), BENCH);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (!o) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const startedAt = now();
const loadStart = loadavg();
mkdirSync(o.out, { recursive: true });
const base = join(o.out, o.name);
const logFile = `${base}.server.log`;
writeFileSync(logFile, "");

const servers: ServerHandle[] = [];
let pool: Pool | null = null;
let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    pool?.killNow();
    await Promise.allSettled(servers.map((s) => s.dispose()));
  }
  process.exit(code);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void stop(130));

progress(
  `bench${o.quick ? " --quick" : ""}: scenarios ${o.scenarios.join(", ")}; ${o.procs} client processes; ` +
    `server state in ${o.stateDir ?? "Miniflare's temporary directory"}; results → ${base}.*`,
);
const secrets = makeSecrets();
const vars: Record<string, string> = {
  // The run measures the server, not its rate limit or socket caps.
  SEND_RATE_PER_MINUTE: "100000000",
  MAX_SOCKETS_PER_USER: "100000",
  // Every bench client registers from the same address, and a few create many conversations.
  REGISTRATIONS_PER_MINUTE: "100000000",
  LOGIN_FAILURES_PER_MINUTE: "100000000",
  CONVERSATIONS_PER_MINUTE: "100000000",
  MEMBERS_ADDED_PER_MINUTE: "100000000",
  USER_LOOKUPS_PER_MINUTE: "100000000",
  TYPING_FRAMES_PER_MINUTE: "100000000",
  ...(o.fanoutMembers > 256 ? { MAX_GROUP_MEMBERS: String(o.fanoutMembers) } : {}),
  // Counts the billed units (worker/lib/meter.ts), read at every step.
  BENCH_METER: "1",
};
const inspectorPort = o.profile ? await freePort() : undefined;
const realOptions = {
  secrets,
  logFile,
  vars,
  stateDir: o.stateDir,
  ...(o.source ? { sourceRoot: o.source } : {}),
};
let real = await startReal({ ...realOptions, ...(inspectorPort ? { inspectorPort } : {}) });
servers.push(real);
progress(`edge-chat on ${real.url} (workerd pid ${real.pid})${o.source ? `, bundled from ${o.source}` : ""}`);
let baseline: ServerHandle | null = null;
if (o.baseline) {
  baseline = await startBaseline({ logFile, stateDir: o.stateDir });
  servers.push(baseline);
  progress(`baseline  on ${baseline.url} (workerd pid ${baseline.pid})`);
}

/** Another pair of servers with the same settings, disposed by the caller. */
async function freshServers() {
  const pair: ServerHandle[] = [await startReal(realOptions)];
  servers.push(pair[0]!);
  if (o!.baseline) {
    pair.push(await startBaseline({ logFile, stateDir: o!.stateDir }));
    servers.push(pair[1]!);
  }
  return {
    targets: [realTarget(pair[0]!), ...(pair[1] ? [baselineTarget(pair[1])] : [])],
    accounts: new Accounts(pair[0]!, secrets.tokenSecret),
    dispose: async () => {
      for (const s of pair) {
        problemsOfDisposed[s.name] = (problemsOfDisposed[s.name] ?? 0) + s.problems();
        servers.splice(servers.indexOf(s), 1);
      }
      await Promise.allSettled(pair.map((s) => s.dispose()));
    },
  };
}
const problemsOfDisposed: Record<string, number> = {};
pool = new Pool(o.procs);
// The profiler attaches at each scenario's first measured step: attached during setup, it
// sent workerd into tens of seconds of busy CPU (the inspector, not the server).
let profiler: Profiler | null = null;
const profiles: Record<string, ProfileSummary> = {};

const ctx: Ctx = {
  o,
  pool,
  accounts: new Accounts(real, secrets.tokenSecret),
  targets: [realTarget(real), ...(baseline ? [baselineTarget(baseline)] : [])],
  layouts: new Map(),
  freshServers,
};

const results: Partial<Record<ScenarioName, ScenarioResult | { error: string }>> = {};
let failed = false;
/**
 * Each scenario after the first gets a new pair of servers: a scenario's leftovers (objects
 * still in memory, archive moves its thousands of messages made due, grown SQLite files)
 * would otherwise land in the next one's figures, on the real server only — the baseline
 * keeps nothing.
 */
async function restartServers(): Promise<void> {
  const old = servers.splice(0);
  for (const s of old) problemsOfDisposed[s.name] = (problemsOfDisposed[s.name] ?? 0) + s.problems();
  await Promise.allSettled(old.map((s) => s.dispose()));
  real = await startReal({ ...realOptions, ...(inspectorPort ? { inspectorPort } : {}) });
  servers.push(real);
  baseline = o!.baseline ? await startBaseline({ logFile, stateDir: o!.stateDir }) : null;
  if (baseline) servers.push(baseline);
  ctx.accounts = new Accounts(real, secrets.tokenSecret);
  ctx.targets = [realTarget(real), ...(baseline ? [baselineTarget(baseline)] : [])];
  ctx.layouts = new Map();
  progress(`fresh servers: edge-chat pid ${real.pid}${baseline ? `, baseline pid ${baseline.pid}` : ""}`);
}

for (const [index, name] of o.scenarios.entries()) {
  progress(`== ${name}`);
  // The memory scenario starts its own servers; the first scenario uses the ones started above.
  if (index > 0 && name !== "memory" && o.scenarios[index - 1] !== "memory") await restartServers();
  if (inspectorPort) {
    hooks.beforeStep = async () => {
      hooks.beforeStep = null;
      profiler = await Profiler.start(inspectorPort, "edge-chat");
      progress(`profiling the edge-chat isolate for ${name} (its figures are slowed by the profiler this run)`);
    };
  }
  try {
    results[name] = await SCENARIO_FUNCTIONS[name](ctx);
  } catch (err) {
    failed = true;
    progress(`${name} FAILED: ${(err as Error).stack ?? err}`);
    results[name] = { error: String(err) };
    await pool.close().catch(() => {});
  }
  hooks.beforeStep = null;
  if (profiler) {
    const profile = await (profiler as Profiler).stop();
    profiler = null;
    writeFileSync(`${base}.${name}.cpuprofile`, JSON.stringify(profile));
    profiles[name] = profileSummary(profile);
    progress(`CPU profile of ${name}: ${base}.${name}.cpuprofile`);
  }
}
if (Object.keys(profiles).length) {
  writeFileSync(`${base}.profile.txt`, Object.entries(profiles).map(([name, p]) => `== ${name}\n${p.text}`).join("\n"));
  progress(`CPU profile summaries: ${base}.profile.txt`);
}

const figures: Figure[] = Object.values(results).flatMap((r) => (r && "figures" in r ? r.figures : []));
const loadEnd = loadavg();
const underLoad = loadStart[0]! > 0.3;
const meta: RunMeta = {
  date: new Date().toISOString(),
  quick: o.quick,
  options: o,
  node: process.version,
  miniflare: MINIFLARE_VERSION,
  cpus: cpus().length,
  loadavgStart: loadStart,
  loadavgEnd: loadEnd,
  durationSeconds: (now() - startedAt) / 1000,
  serverProblems: Object.fromEntries(servers.map((s) => [s.name, s.problems() + (problemsOfDisposed[s.name] ?? 0)])),
  label:
    (underLoad
      ? `Measured under load: the machine's 1-minute load average was ${loadStart[0]!.toFixed(2)} before the run started`
      : `Measured with a 1-minute load average of ${loadStart[0]!.toFixed(2)} before the run`) +
    (o.profile ? " (with --profile: edge-chat slowed by the profiler, ratios not comparable)" : "") +
    (o.source ? ` (edge-chat bundled from ${o.source})` : ""),
};
const sustainedDetails = results.sustained && "details" in results.sustained ? (results.sustained.details.runs as Parameters<typeof markdown>[2]) : null;
if (ctx.accounts.registrationMs.length) {
  (meta as RunMeta & { registrationMs?: number[] }).registrationMs = ctx.accounts.registrationMs.map((v) => Math.round(v));
}

writeFileSync(`${base}.json`, JSON.stringify(jsonSafe({ meta, figures, scenarios: results, profiles: Object.fromEntries(Object.entries(profiles).map(([k, p]) => [k, p.top])) }), null, 2) + "\n");
writeFileSync(`${base}.md`, markdown(meta, figures, sustainedDetails, profiles));
writeFileSync(
  `${base}.svg`,
  svg(figures, sustainedDetails, `edge-chat vs baseline — ${meta.date.slice(0, 16).replace("T", " ")}${o.quick ? " (quick)" : ""}`, o.maxAckP99),
);

process.stdout.write(`\n${meta.label}.\n\n${consoleTable(figures)}\n\n`);
process.stdout.write(`results: ${base}.json, ${base}.md, ${base}.svg (server log: ${logFile})\n`);
progress(`done in ${meta.durationSeconds.toFixed(0)}s`);

await pool.shutdown();
pool = null;
await Promise.allSettled(servers.map((s) => s.dispose()));
process.exit(failed ? 1 : 0);
