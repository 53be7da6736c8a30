/**
 * `--profile`: a V8 CPU profile of the real server's isolate (the Worker and both object
 * classes share it) over the whole run, through workerd's inspector. Writes
 * NAME.cpuprofile (open it in Chrome DevTools → Performance, or speedscope) and a summary:
 * self time by function, and which functions the SQLite `exec` time is spent under.
 */
import { createServer } from "node:net";
import WebSocket from "ws";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export class Profiler {
  private readonly ws: WebSocket;
  private nextId = 1;
  private readonly waiting = new Map<number, (result: unknown) => void>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (data) => {
      const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown };
      if (msg.id !== undefined) {
        this.waiting.get(msg.id)?.(msg.result);
        this.waiting.delete(msg.id);
      }
    });
  }

  /** Attaches to the isolate of the Worker named `worker` on workerd's inspector port, and starts sampling. */
  static async start(inspectorPort: number, worker: string, intervalUs = 500): Promise<Profiler> {
    const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as { title: string; webSocketDebuggerUrl: string }[];
    const target = targets.find((t) => t.title.endsWith(`:${worker}`)) ?? targets.find((t) => t.title.includes(worker));
    if (!target) throw new Error(`no inspector target for ${worker}: ${targets.map((t) => t.title).join(", ")}`);
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const p = new Profiler(ws);
    await p.call("Profiler.enable");
    await p.call("Profiler.setSamplingInterval", { interval: intervalUs });
    await p.call("Profiler.start");
    return p;
  }

  private call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async stop(): Promise<CpuProfile> {
    const result = (await this.call("Profiler.stop")) as { profile: CpuProfile };
    this.ws.close();
    return result.profile;
  }
}

/**
 * A sample's weight: its time delta, capped at 4 ms (8 sampling intervals). When the
 * isolate's thread is not running JS the sampler is not ticking, and the next sample would
 * otherwise carry seconds of waiting onto whatever frame it lands in.
 */
const sampleUs = (profile: CpuProfile, i: number) => Math.min(4_000, profile.timeDeltas[i] ?? 0);

export interface ProfileSummary {
  /** The summary as text (summarizeProfile). */
  text: string;
  totalMs: number;
  /** Self time by function, most first. */
  top: { frame: string; ms: number; percent: number }[];
}

export function profileSummary(profile: CpuProfile, top = 15): ProfileSummary {
  const { self, total } = selfTimes(profile);
  return {
    text: summarizeProfile(profile),
    totalMs: Math.round(total / 1000),
    top: [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([frame, us]) => ({ frame, ms: Math.round(us / 1000), percent: Math.round((1000 * us) / Math.max(1, total)) / 10 })),
  };
}

const frameLabel = (n: ProfileNode) =>
  `${n.callFrame.functionName || "(anonymous)"}${n.callFrame.lineNumber >= 0 ? `:${n.callFrame.lineNumber + 1}` : ""}`;

function selfTimes(profile: CpuProfile): { self: Map<string, number>; total: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = sampleUs(profile, i);
    const n = byId.get(id);
    if (!n) return;
    total += dt;
    self.set(frameLabel(n), (self.get(frameLabel(n)) ?? 0) + dt);
  });
  return { self, total };
}

/** A text summary: top self time by function, and the callers under which SQL `exec` runs. */
export function summarizeProfile(profile: CpuProfile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"}${n.callFrame.lineNumber >= 0 ? `:${n.callFrame.lineNumber + 1}` : ""}`;
  const self = new Map<string, number>();
  const sql = new Map<string, number>();
  let total = 0;
  let sqlTotal = 0;
  profile.samples.forEach((id, i) => {
    const dt = sampleUs(profile, i);
    const n = byId.get(id);
    if (!n) return;
    total += dt;
    self.set(label(n), (self.get(label(n)) ?? 0) + dt);
    if (n.callFrame.functionName === "exec") {
      const chain: string[] = [];
      let p = byId.get(parent.get(n.id) ?? -1);
      while (p && chain.length < 2) {
        chain.push(label(p));
        p = byId.get(parent.get(p.id) ?? -1);
      }
      const key = chain.join(" ← ");
      sql.set(key, (sql.get(key) ?? 0) + dt);
      sqlTotal += dt;
    }
  });
  const rows = (m: Map<string, number>, of: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => `${(v / 1000).toFixed(0).padStart(8)} ms ${((100 * v) / of).toFixed(1).padStart(5)}%  ${k}`);
  return [
    `CPU profile of the edge-chat isolate: ${(total / 1000).toFixed(0)} ms sampled (line numbers are in the bundle).`,
    "",
    "Self time by function:",
    ...rows(self, total),
    "",
    `SQLite exec: ${(sqlTotal / 1000).toFixed(0)} ms (${((100 * sqlTotal) / Math.max(1, total)).toFixed(1)}% of samples), by caller:`,
    ...rows(sql, Math.max(1, sqlTotal)),
    "",
  ].join("\n");
}
