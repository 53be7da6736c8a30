/**
 * `npm run chaos -- [flags]`: the fault-injection run (see bench/chaos/README.md).
 * Prints the checker's table, writes bench/results/chaos-<timestamp>.json, and exits
 * 0 only when nothing was lost, duplicated, unexpected or reordered and every send was acked.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const HELP = `usage: npm run chaos -- [options]

  --clients N        clients (one user + one device each)           default 20
  --messages M       messages each client sends                     default 500
  --restarts K       server kills + restarts during the run         default 5
  --signal SIG       SIGKILL (a crash) or SIGTERM (graceful)         default SIGKILL
  --no-final-kill    skip the extra kill right after the last ack (by default the server is killed
                     once more then, and devices must catch up before any request reaches a
                     conversation object: only the objects' own recovery can finish the fan-out)
  --kill-when W      owed: each kill waits (≤ 3 s) for an acked message not yet on every
                     device, then strikes; any: kill when due                   default owed
  --seed S           seed for layout, choices and kill moments      default random (printed)
  --group-size G     members per group (plus one group of all)      default 5
  --http-share P     share of send attempts over HTTP, 0..1         default 0.5 (rest: conversation socket)
  --drops D          device sockets dropped by clients themselves   default 10
  --send-rate R      SEND_RATE_PER_MINUTE for the run, 0 = as configured   default 1000000
  --settle-ms T      how long devices may take to catch up at the end      default 30000
  --give-up-ms T     a client abandons a message after retrying this long  default 180000
  --keep-state       keep the state directory and server log even when clean
  --no-snapshot      run the server from the working tree (default: a snapshot copy, E2E_SNAPSHOT=1,
                     so concurrent edits cannot hot-reload it mid-run)
  --out FILE         JSON report path (default bench/results/chaos-<timestamp>.json)
  --quiet            no progress line
`;

const { values } = parseArgs({
  options: {
    clients: { type: "string" },
    messages: { type: "string" },
    restarts: { type: "string" },
    signal: { type: "string" },
    "kill-when": { type: "string" },
    seed: { type: "string" },
    "group-size": { type: "string" },
    "http-share": { type: "string" },
    drops: { type: "string" },
    "send-rate": { type: "string" },
    "settle-ms": { type: "string" },
    "give-up-ms": { type: "string" },
    "keep-state": { type: "boolean", default: false },
    "no-final-kill": { type: "boolean", default: false },
    "no-snapshot": { type: "boolean", default: false },
    out: { type: "string" },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function num(name: string, raw: string | undefined, fallback: number, check: (n: number) => boolean): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || !check(n)) {
    process.stderr.write(`--${name}: invalid value ${JSON.stringify(raw)}\n\n${HELP}`);
    process.exit(2);
  }
  return n;
}

// The server module reads E2E_SNAPSHOT when it loads, so this comes before importing the harness.
if (!values["no-snapshot"]) process.env.E2E_SNAPSHOT ??= "1";
// Ctrl-C: exit through process.exit so that the server (its own process group) is killed on the way out.
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

const { DEFAULTS, runChaos } = await import("./harness");
const { formatReport } = await import("./checker");

const signal = (values.signal ?? DEFAULTS.signal).toUpperCase();
if (signal !== "SIGKILL" && signal !== "SIGTERM") {
  process.stderr.write(`--signal: SIGKILL or SIGTERM, not ${values.signal}\n`);
  process.exit(2);
}
if (values["kill-when"] !== undefined && values["kill-when"] !== "owed" && values["kill-when"] !== "any") {
  process.stderr.write(`--kill-when: owed or any, not ${values["kill-when"]}\n`);
  process.exit(2);
}
const int = (n: number) => Number.isInteger(n);
const options = {
  clients: num("clients", values.clients, DEFAULTS.clients, (n) => int(n) && n >= 2),
  messages: num("messages", values.messages, DEFAULTS.messages, (n) => int(n) && n >= 1),
  restarts: num("restarts", values.restarts, DEFAULTS.restarts, (n) => int(n) && n >= 0),
  finalKill: !values["no-final-kill"],
  killWhen: (values["kill-when"] ?? DEFAULTS.killWhen) as "owed" | "any",
  signal: signal as "SIGKILL" | "SIGTERM",
  seed: num("seed", values.seed, Math.floor(Math.random() * 2 ** 31), (n) => int(n) && n >= 0),
  groupSize: num("group-size", values["group-size"], DEFAULTS.groupSize, (n) => int(n) && n >= 2),
  httpShare: num("http-share", values["http-share"], DEFAULTS.httpShare, (n) => n >= 0 && n <= 1),
  drops: num("drops", values.drops, DEFAULTS.drops, (n) => int(n) && n >= 0),
  sendRate: num("send-rate", values["send-rate"], DEFAULTS.sendRate, (n) => int(n) && n >= 0),
  settleMs: num("settle-ms", values["settle-ms"], DEFAULTS.settleMs, (n) => n >= 0),
  giveUpMs: num("give-up-ms", values["give-up-ms"], DEFAULTS.giveUpMs, (n) => n > 0),
  keepState: values["keep-state"],
};

const tty = process.stderr.isTTY && !values.quiet;
let lastLine = 0;
const say = (line: string) => {
  if (tty) process.stderr.write("\r\x1b[K");
  process.stderr.write(`${line}\n`);
};
const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

say(
  `chaos: ${options.clients} clients × ${options.messages} messages, ${options.restarts} × ${options.signal}${options.finalKill ? " + a final one" : ""}, seed ${options.seed}` +
    `${process.env.E2E_SNAPSHOT ? ", server from a snapshot" : ""}`,
);

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
let result;
try {
  result = await runChaos({
    ...options,
    log: (line) => say(`[chaos] ${line}`),
    onProgress: values.quiet
      ? undefined
      : (p) => {
          const line =
            `[${secs(p.elapsedMs).padStart(7)}] ${p.phase.padEnd(6)} acked ${p.acked}/${p.total} (${Math.floor((100 * p.acked) / p.total)}%)` +
            `  attempts ${p.attempts} retries ${p.retries}  restarts ${p.restartsDone}/${p.restarts} ${p.serverUp ? "up" : "DOWN"}` +
            `  device events ${p.deliveries} reconnects ${p.reconnects}` +
            (p.undelivered !== undefined ? `  undelivered ${p.undelivered}` : "");
          if (tty) process.stderr.write(`\r\x1b[K${line}`);
          else if (Date.now() - lastLine >= 5_000) {
            lastLine = Date.now();
            process.stderr.write(`${line}\n`);
          }
        },
  });
} catch (err) {
  say(`chaos: the run itself failed: ${(err as Error)?.stack ?? String(err)}`);
  process.exit(2);
}
if (tty) process.stderr.write("\r\x1b[K");

const r = result;
const out = values.out ? resolve(values.out) : join(root, "bench", "results", `chaos-${r.startedAt.replace(/[:.]/g, "-")}.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(r, null, 2)}\n`);

const c = r.counters;
const lines = [
  "",
  formatReport(r.check),
  "",
  `sends:      ${r.check.stats.attempts} messages, ${c.attempts} attempts (${c.retries} retries, at most ${c.maxAttempts} for one), ${r.check.stats.acks} acked (${c.repeats} as an idempotent 200)`,
  `latency:    first attempt to ack p50 ${c.ackLatencyMs.p50} ms, p95 ${c.ackLatencyMs.p95} ms, p99 ${c.ackLatencyMs.p99} ms, max ${c.ackLatencyMs.max} ms; ${(r.check.stats.acks / (r.durations.sendMs / 1000)).toFixed(1)} acks/s over the send phase`,
  `outcomes:   ${Object.entries(c.outcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(" ")}`,
  `devices:    ${r.check.stats.deliveries} message events, ${c.deviceConnections} connections (${c.deviceReconnects} reconnects, ${c.clientDrops} client drops, ${c.heartbeatKills} heartbeat kills)` +
    (Object.keys(c.deviceRefusals).length ? `, refused: ${Object.entries(c.deviceRefusals).map(([k, v]) => `${k}=${v}`).join(" ")}` : ""),
  `restarts:   ${r.restarts.map((x) => `#${x.n}${x.final ? " (final)" : ""} ${x.signal} at ${secs(x.atMs)} (${x.ackedBefore} acked, ${x.owedDeliveries} deliveries owed) down ${secs(x.downMs)}`).join("; ") || "none"}`,
  `durations:  total ${secs(r.durations.totalMs)} = setup ${secs(r.durations.setupMs)} + send ${secs(r.durations.sendMs)} + settle ${secs(r.durations.settleMs)} (devices had every acked message after ${secs(r.durations.deliveryWaitMs)})`,
  `server:     flags ${r.server.extraArgs.join(" ") || "(none)"}; hot reloads ${r.server.reloads}${r.server.kept ? `; state ${r.server.persistDir}, log ${r.server.logFile}` : ""}`,
  `report:     ${relative(process.cwd(), out)}`,
];
if (r.warnings.length) lines.push("", "warnings:", ...r.warnings.map((w) => `  ${w}`));
if (r.problems.length) lines.push("", "problems:", ...r.problems.slice(0, 20).map((p) => `  ${p}`), ...(r.problems.length > 20 ? [`  … ${r.problems.length - 20} more`] : []));
lines.push(
  "",
  `${r.ok ? "PASS" : "FAIL"}: lost ${r.check.totals.lost}, duplicated ${r.check.totals.duplicated}, unexpected ${r.check.totals.unexpected}, reordered ${r.check.totals.reordered}` +
    `${r.problems.length ? `; ${r.problems.length} problem(s)` : ""} (seed ${options.seed})`,
);
process.stdout.write(`${lines.join("\n")}\n`);
process.exit(r.ok ? 0 : 1);
