/**
 * `npm run fuzz -- [--cases 10000] [--seed N] [--concurrency 8] [--honest-pairs 3] [--subscribed-phones 2] [--attackers 6]
 *                  [--flooders 4] [--floods 2] [--strict] [--out FILE]`
 *
 * Starts the real local server (a snapshot of the working tree, so concurrent edits cannot
 * hot-reload it mid-run; E2E_SNAPSHOT=0 runs it in place), runs the fuzz cases while honest
 * clients talk, prints the counts and writes a JSON report to bench/results/fuzz-<timestamp>.json.
 * Exits 1 unless crashes, honest clients disturbed and things wrongly stored are all 0
 * (with --strict, other contract violations too).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

process.env.E2E_SNAPSHOT ??= "1";

const { values } = parseArgs({
  options: {
    cases: { type: "string" },
    seed: { type: "string" },
    concurrency: { type: "string" },
    "honest-pairs": { type: "string" },
    "subscribed-phones": { type: "string" },
    attackers: { type: "string" },
    flooders: { type: "string" },
    floods: { type: "string" },
    "flood-size": { type: "string" },
    "settle-ms": { type: "string" },
    strict: { type: "boolean", default: false },
    out: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});

if (values.help) {
  console.log("npm run fuzz -- [--cases 10000] [--seed N] [--concurrency 8] [--honest-pairs 3] [--subscribed-phones 2] [--attackers 6] [--flooders 4] [--floods 2] [--flood-size 100] [--strict] [--out FILE]");
  process.exit(0);
}

const num = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer`);
    process.exit(2);
  }
  return n;
};

// Imported after E2E_SNAPSHOT is settled: the harness reads it when it loads.
const { runFuzz, summarize, DEFAULTS } = await import("./fuzz.ts");

const options = Object.fromEntries(
  Object.entries({
    cases: num(values.cases, "cases"),
    seed: num(values.seed, "seed") ?? (values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : undefined),
    concurrency: num(values.concurrency, "concurrency"),
    honestPairs: num(values["honest-pairs"], "honest-pairs"),
    subscribedPhones: num(values["subscribed-phones"], "subscribed-phones"),
    attackers: num(values.attackers, "attackers"),
    flooders: num(values.flooders, "flooders"),
    floods: num(values.floods, "floods"),
    floodSize: num(values["flood-size"], "flood-size"),
    settleMs: num(values["settle-ms"], "settle-ms"),
  }).filter(([, v]) => v !== undefined),
);
console.log(`fuzz: ${options.cases ?? DEFAULTS.cases} cases, seed ${options.seed} (rerun with --seed ${options.seed})`);

const report = await runFuzz({ ...options, log: (line) => console.log(line) });
console.log(summarize(report));

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const out = values.out ?? join(root, "bench", "results", `fuzz-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
console.log(`report: ${out}`);

const pass = report.ok && (!values.strict || report.counts.violations === 0);
process.exit(pass ? 0 : 1);
