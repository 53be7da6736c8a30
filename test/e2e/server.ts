/**
 * The real local server, started as a user would: `node scripts/start.mjs --port P --persist-to DIR`
 * (D1 migrations, then `wrangler dev`). It runs detached in its own process group so that
 * stop() can signal wrangler, workerd and everything else it spawned at once.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, symlinkSync, writeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Node 22 from the `node` devDependency when present, else the node running the tests. */
const NODE = existsSync(join(ROOT, "node_modules", "node", "bin", "node")) ? join(ROOT, "node_modules", "node", "bin", "node") : process.execPath;

/**
 * `wrangler dev` hot-reloads the Worker whenever a source file changes, which drops every
 * object instance and socket mid-test. With E2E_SNAPSHOT=1 the server runs from a copy of
 * the working tree taken when the suite starts (node_modules linked, not copied), so
 * concurrent edits in the repo cannot disturb a run. Without it the server runs in place.
 */
const SNAPSHOT = /^(1|true|yes)$/i.test(process.env.E2E_SNAPSHOT ?? "");
let snapshotRoot: string | null = null;

function serverRoot(): string {
  if (!SNAPSHOT) return ROOT;
  if (snapshotRoot) return snapshotRoot;
  const dir = mkdtempSync(join(tmpdir(), "edge-chat-e2e-src-"));
  const skip = new Set(["node_modules", ".git", ".wrangler", "dist", "bench", ".state"]);
  cpSync(ROOT, dir, {
    recursive: true,
    filter: (src) => {
      const rel = src.slice(ROOT.length + 1);
      return rel === "" || !skip.has(rel.split("/")[0]!);
    },
  });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  snapshotRoot = dir;
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Every e2e client comes from 127.0.0.1, and suites register and create far more than one
 * person would: the abuse limits of CONTRACT.md section 17 are raised for them (their
 * defaults are tested in test/workers/rate-limits.test.ts). A test's own `args` come after
 * these, so it can set any of them lower again.
 */
export const GENEROUS_LIMITS = [
  "REGISTRATIONS_PER_MINUTE",
  "LOGIN_FAILURES_PER_MINUTE",
  "USER_LOOKUPS_PER_MINUTE",
  "CONVERSATIONS_PER_MINUTE",
  "MEMBERS_ADDED_PER_MINUTE",
].flatMap((name) => ["--var", `${name}:1000000`]);

const STARTUP_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 10_000;

/** A port nobody is listening on right now (bind port 0, read it, let it go). */
export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const srv = createServer();
    srv.once("error", () => ok(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => ok(true)));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Every live server, so that an aborted run never leaves one behind: the servers sit in
 * their own process groups, out of reach of a Ctrl-C aimed at the test runner.
 */
const live = new Set<TestServer>();
const killAll = () => {
  for (const s of live) s.killNow();
};
process.once("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

export interface StartOptions {
  /** Reuse a state directory (a restart); a fresh temporary one otherwise. */
  persistDir?: string;
  port?: number;
  /** Further `wrangler dev` flags, passed through by scripts/start.mjs (e.g. `--var`, `KEY:VALUE`); kept for restarts. */
  args?: string[];
}

export class TestServer {
  readonly persistDir: string;
  readonly logFile: string;
  port = 0;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private ownsDir: boolean;
  private starts = 0;
  private args: string[] = [];

  private constructor(persistDir: string | undefined) {
    this.ownsDir = persistDir === undefined;
    const base = persistDir ?? mkdtempSync(join(tmpdir(), "edge-chat-e2e-"));
    this.persistDir = join(base, this.ownsDir ? "state" : "");
    mkdirSync(this.persistDir, { recursive: true });
    this.logFile = join(this.ownsDir ? base : tmpdir(), `server-${process.pid}-${Date.now()}.log`);
  }

  static async start(opts: StartOptions = {}): Promise<TestServer> {
    const server = new TestServer(opts.persistDir);
    server.args = opts.args ?? [];
    await server.launch(opts.port ?? (await freePort()));
    return server;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** The server's output so far, for failure messages. */
  log(tailChars = 4000): string {
    try {
      const text = readFileSync(this.logFile, "utf8");
      return text.slice(-tailChars);
    } catch {
      return "";
    }
  }

  /**
   * How often `wrangler dev` hot-reloaded the Worker (a source file changed under it): each
   * reload drops every object instance and socket, so tests running across one can fail
   * for reasons that are not the server's.
   */
  reloads(): number {
    try {
      return (readFileSync(this.logFile, "utf8").match(/Reloading local server/g) ?? []).length;
    } catch {
      return 0;
    }
  }

  private note(line: string) {
    const fd = openSync(this.logFile, "a");
    writeSync(fd, `\n===== [e2e harness ${new Date().toISOString()}] ${line} =====\n`);
    closeSync(fd);
  }

  private async launch(port: number): Promise<void> {
    this.port = port;
    this.starts += 1;
    this.note(`start #${this.starts} on port ${port}, persist ${this.persistDir}`);
    const out = openSync(this.logFile, "a");
    const root = serverRoot();
    // (Before --port: what follows --persist-to DIR is the caller's, as bench/chaos reads it back.)
    const child = spawn(NODE, [join(root, "scripts", "start.mjs"), ...GENEROUS_LIMITS, "--port", String(port), "--persist-to", this.persistDir, ...this.args], {
      cwd: root,
      detached: true,
      stdio: ["ignore", out, out],
      env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
    });
    closeSync(out);
    this.child = child;
    live.add(this);
    let exitInfo: string | null = null;
    this.exited = new Promise((ok) =>
      child.once("exit", (code, signal) => {
        exitInfo = `exited with code ${code} signal ${signal}`;
        ok();
      }),
    );

    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      if (exitInfo) throw new Error(`server ${exitInfo} before it was healthy; log:\n${this.log()}`);
      try {
        const res = await fetch(`${this.baseUrl}/v1/health`, { signal: AbortSignal.timeout(2_000) });
        if (res.status === 200) {
          await res.text();
          break;
        }
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.stop("SIGKILL");
        throw new Error(`server not healthy within ${STARTUP_TIMEOUT_MS} ms; log:\n${this.log()}`);
      }
      await sleep(200);
    }
    this.note("healthy");
  }

  /** Signals the whole process group; SIGKILL after a grace period; waits until the port is free. */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const child = this.child;
    if (!child || child.pid === undefined) return;
    this.note(`stop with ${signal}`);
    const pid = child.pid;
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pid, sig);
      } catch {
        // already gone
      }
    };
    signalGroup(signal);
    const graceful = await Promise.race([this.exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
    // Whatever is left of the group (workerd children, a wrangler that ignored the signal) goes now.
    if (!graceful) this.note("grace period over: SIGKILL");
    signalGroup("SIGKILL");
    await this.exited;
    this.child = null;
    live.delete(this);
    const deadline = Date.now() + 15_000;
    while (!(await portIsFree(this.port))) {
      if (Date.now() > deadline) throw new Error(`port ${this.port} still busy after stop`);
      await sleep(100);
    }
  }

  /** Stops (with `signal`) and starts again on the same state directory and port. */
  async restart(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    await this.stop(signal);
    await this.launch(this.port);
  }

  /** Stops the server and, when the state directory is ours, removes it (the log is kept unless clean). */
  async dispose(removeState = true): Promise<void> {
    await this.stop("SIGTERM");
    const reloads = this.reloads();
    if (reloads > 0) {
      console.warn(`[e2e] wrangler dev hot-reloaded the Worker ${reloads} time(s) during this file (sources changed); see ${this.logFile}`);
    }
    if (removeState && this.ownsDir) rmSync(this.persistDir, { recursive: true, force: true });
  }

  /** Synchronous last resort for process exit. */
  killNow(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/**
 * The TOKEN_SECRET the local server signs with: the `.dev.vars` it runs with (what wrangler
 * reads; `npm start` writes a random secret there on first start, in the snapshot too).
 */
export function localTokenSecret(): string {
  for (const file of [".dev.vars"]) {
    const path = join(serverRoot(), file);
    if (!existsSync(path)) continue;
    const m = readFileSync(path, "utf8").match(/^\s*TOKEN_SECRET\s*=\s*"?([^"\n]*)"?\s*$/m);
    if (m?.[1]) return m[1];
  }
  throw new Error("no TOKEN_SECRET in .dev.vars (start the server first)");
}
