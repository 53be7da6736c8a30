/**
 * The two servers under test, each in its own workerd process driven through the
 * `miniflare` package (not `wrangler dev`, whose proxy would be measured too):
 *
 * - "edge-chat": worker/index.ts bundled with esbuild, with the bindings of wrangler.toml
 *   (read by wrangler's `unstable_getMiniflareWorkerOptions`), the D1 migrations applied,
 *   fresh secrets, and the limits the benchmark needs raised.
 * - "baseline": bench/baseline/worker.ts, a storage-free echo/broadcast object pair.
 *
 * Each gets its own workerd so the idle-memory figures of one do not include the other.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import type { Miniflare as MiniflareType } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT } from "./util.ts";

type Miniflare = MiniflareType;
type MiniflareModule = typeof import("miniflare");

/**
 * The `miniflare` devDependency, pinned to the version wrangler itself uses (so the
 * worker options wrangler builds from wrangler.toml are ones this Miniflare knows). If
 * node_modules predates that pin (`npm install` not run since), wrangler's own copy.
 */
async function loadMiniflare(): Promise<{ mod: MiniflareModule; version: string }> {
  const require = createRequire(import.meta.url);
  const wranglerPkg = require("wrangler/package.json") as { dependencies: Record<string, string> };
  const wanted = wranglerPkg.dependencies.miniflare!;
  const ownPath = require.resolve("miniflare");
  const own = require(join(ownPath, "..", "..", "..", "package.json")) as { version: string };
  if (own.version === wanted) return { mod: await import("miniflare"), version: own.version };
  const viaWrangler = createRequire(require.resolve("wrangler/package.json")).resolve("miniflare");
  const pkg = require(join(viaWrangler, "..", "..", "..", "package.json")) as { version: string };
  process.stderr.write(
    `note: node_modules/miniflare is ${own.version}, wrangler uses ${wanted}; using wrangler's copy (${pkg.version}). Run npm install.\n`,
  );
  return { mod: (await import(pathToFileURL(viaWrangler).href)) as MiniflareModule, version: pkg.version };
}

const miniflare = await loadMiniflare();
export const MINIFLARE_VERSION = miniflare.version;
const { Log, LogLevel, Miniflare, convertV4MiniflareOptions } = miniflare.mod;
type V4Options = Parameters<typeof convertV4MiniflareOptions>[0];

export interface ServerHandle {
  name: "edge-chat" | "baseline";
  mf: Miniflare;
  /** http://127.0.0.1:PORT */
  url: string;
  /** The workerd process serving it. */
  pid: number;
  /** Lines of warn/error the server logged. */
  problems: () => number;
  dispose: () => Promise<void>;
}

export interface Secrets {
  tokenSecret: string;
  vapidPublicKey: string;
  vapidPrivateKey: string;
}

/** Fresh secrets for one run: a random token secret and a P-256 VAPID pair in the README's format. */
export function makeSecrets(): Secrets {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const pub = publicKey.export({ format: "jwk" });
  const raw = Buffer.concat([Buffer.from([4]), Buffer.from(pub.x!, "base64url"), Buffer.from(pub.y!, "base64url")]);
  return {
    tokenSecret: randomBytes(32).toString("base64url"),
    vapidPublicKey: raw.toString("base64url"),
    vapidPrivateKey: privateKey.export({ format: "jwk" }).d!,
  };
}

async function bundle(entry: string, outdir: string, define: Record<string, string> = {}): Promise<string> {
  try {
    await bundleInto(entry, outdir, define);
  } catch (err) {
    rmSync(outdir, { recursive: true, force: true });
    throw err;
  }
  return join(outdir, "index.js");
}

async function bundleInto(entry: string, outdir: string, define: Record<string, string>): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile: join(outdir, "index.js"),
    bundle: true,
    format: "esm",
    target: "es2024",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["browser", "module", "main"],
    external: ["cloudflare:*", "node:*"],
    define,
    logLevel: "warning",
    sourcemap: false,
  });
}

/** workerd processes that are children of this process right now. */
function workerdChildren(): Set<number> {
  const out = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid …
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      if (ppid === process.pid && comm.startsWith("workerd")) out.add(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

/** CPU time (user + system) a process has used so far, in milliseconds (/proc/PID/stat, 10 ms ticks). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The units worker/lib/meter.ts counts (the baseline keeps the same shape). */
export type { MeterCounts } from "../../protocol/meter.ts";
import type { MeterCounts } from "../../protocol/meter.ts";

/** GET /__bench/meter, or null when the server has no meter (e.g. --source from an older tree). */
export async function readMeter(url: string): Promise<MeterCounts | null> {
  try {
    const res = await fetch(`${url}/__bench/meter`);
    if (res.status !== 200) return null;
    const body = (await res.json()) as MeterCounts;
    return typeof body.doRpc === "number" ? body : null;
  } catch {
    return null;
  }
}

/** Resident set size of a process, in bytes (VmRSS of /proc/PID/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(status.match(/^VmRSS:\s+(\d+)\s+kB/m)?.[1]);
  return kb * 1024;
}

async function start(
  name: ServerHandle["name"],
  workers: { workers: unknown[]; inspectorPort?: number },
  logFile: string,
  stateDir: string | undefined,
): Promise<ServerHandle> {
  let problems = 0;
  const before = workerdChildren();
  // wrangler builds Miniflare v4-shaped worker options; this Miniflare converts them.
  const options = convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: 0,
    // A placeholder `request.cf`: never fetch the real one from the network.
    cf: false,
    log: new Log(LogLevel.WARN),
    handleStructuredLogs: ({ level, message }: { level: string; message: string }) => {
      if (level === "warn" || level === "error") problems += 1;
      appendFileSync(logFile, `[${name}] ${level}: ${message}\n`);
    },
    ...workers,
  } as V4Options);
  // Durable Object SQLite and D1 live under stateDir (a fresh directory, removed afterwards).
  const state = stateDir ? mkdtempSync(join(stateDir, `edge-chat-bench-${name}-state-`)) : undefined;
  const mf = new Miniflare({ ...options, enableDevRegistry: false, ...(state ? { resourcePersistencePath: state } : {}) });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const spawned = [...workerdChildren()].filter((pid) => !before.has(pid));
  if (spawned.length !== 1) throw new Error(`expected one new workerd process for ${name}, found ${spawned.length}`);
  const dispose = async () => {
    await mf.dispose();
    if (state) rmSync(state, { recursive: true, force: true });
  };
  return { name, mf, url, pid: spawned[0]!, problems: () => problems, dispose };
}

let wranglerOptions: ReturnType<typeof unstable_getMiniflareWorkerOptions> | null = null;

/** Worker options from wrangler.toml, read once (wrangler logs when it reads .dev.vars). */
function fromWranglerToml() {
  wranglerOptions ??= unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  return wranglerOptions;
}

export interface RealOptions {
  secrets: Secrets;
  logFile: string;
  /** Extra or overriding [vars]. */
  vars: Record<string, string>;
  /** Bundle worker/index.ts from this tree instead of the repo (to A/B a change); wrangler.toml still comes from the repo. */
  sourceRoot?: string;
  /** Open workerd's V8 inspector on this port (for profiling). */
  inspectorPort?: number;
  /** Where the objects' SQLite and D1 files go; Miniflare's temporary directory if unset. */
  stateDir?: string;
}

/** The real Worker and its objects, from wrangler.toml, with migrations applied. */
export async function startReal(opts: RealOptions): Promise<ServerHandle> {
  // Without the web app's static assets: the bench speaks to the API only, and the assets'
  // single-page fallback would answer /__bench/meter (outside /v1/) with index.html.
  const { workerOptions: fromToml, define, main } = fromWranglerToml();
  const { assets: _assets, ...workerOptions } = fromToml as typeof fromToml & { assets?: unknown };
  const outdir = mkdtempSync(join(tmpdir(), "edge-chat-bench-real-"));
  const entry = opts.sourceRoot ? join(opts.sourceRoot, "worker", "index.ts") : (main ?? join(ROOT, "worker", "index.ts"));
  const script = await bundle(entry, outdir, define);
  const server = await start(
    "edge-chat",
    {
      workers: [
        {
          ...workerOptions,
          name: "edge-chat",
          rootPath: ROOT,
          modulesRoot: outdir,
          modules: [{ type: "ESModule", path: script }],
          bindings: {
            ...(workerOptions.bindings ?? {}),
            TOKEN_SECRET: opts.secrets.tokenSecret,
            VAPID_PUBLIC_KEY: opts.secrets.vapidPublicKey,
            VAPID_PRIVATE_KEY: opts.secrets.vapidPrivateKey,
            ...opts.vars,
          },
        },
      ],
      ...(opts.inspectorPort ? { inspectorPort: opts.inspectorPort } : {}),
    } as never,
    opts.logFile,
    opts.stateDir,
  );
  if (!workerOptions.queueProducers || !("PUSH_QUEUE" in (workerOptions.queueProducers as object))) {
    throw new Error("wrangler.toml no longer binds PUSH_QUEUE; the bench expects it");
  }
  await applyMigrations(server.mf);
  const dispose = server.dispose;
  server.dispose = async () => {
    await dispose();
    rmSync(outdir, { recursive: true, force: true });
  };
  return server;
}

/** Applies schema/migrations/*.sql in order, statement by statement (drizzle's breakpoints). */
async function applyMigrations(mf: Miniflare): Promise<void> {
  const db = await mf.getD1Database("DB");
  const dir = join(ROOT, "schema", "migrations");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    const statements = readFileSync(join(dir, file), "utf8")
      .split("--> statement-breakpoint")
      .map((s) => s.trim())
      .filter(Boolean);
    for (const sql of statements) await db.prepare(sql).run();
  }
}

/** The storage-free baseline (bench/baseline/worker.ts), same compatibility settings as the real Worker. */
export async function startBaseline(opts: { logFile: string; stateDir?: string }): Promise<ServerHandle> {
  const { workerOptions } = fromWranglerToml();
  const outdir = mkdtempSync(join(tmpdir(), "edge-chat-bench-base-"));
  const script = await bundle(join(ROOT, "bench", "baseline", "worker.ts"), outdir);
  const server = await start(
    "baseline",
    {
      workers: [
        {
          name: "baseline",
          compatibilityDate: workerOptions.compatibilityDate,
          compatibilityFlags: workerOptions.compatibilityFlags,
          modulesRoot: outdir,
          modules: [{ type: "ESModule", path: script }],
          durableObjects: {
            ROOM: { className: "Room", useSQLite: true },
            BOX: { className: "Box", useSQLite: true },
          },
        },
      ],
    } as never,
    opts.logFile,
    opts.stateDir,
  );
  const dispose = server.dispose;
  server.dispose = async () => {
    await dispose();
    rmSync(outdir, { recursive: true, force: true });
  };
  return server;
}
