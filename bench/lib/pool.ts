/**
 * The orchestrator's side of the client processes: forks them, places sockets on them
 * round-robin, splits an open-loop send plan across them, and merges what they measured.
 */
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import type { ClientReply, ClientRequest, LoadPlan, SocketSpec, StageData } from "./protocol.ts";
import { BENCH, now, sleep } from "./util.ts";

/** Every client process's StageData, concatenated into plain arrays. */
export type Merged = Omit<StageData, "ack" | "conv" | "sync"> & { ack: number[]; conv: number[]; sync: number[] };

export interface LoadResult {
  sent: number;
  aborted: boolean;
  pending: number;
}

export class Pool {
  private readonly procs: ChildProcess[] = [];
  private readonly waiting = new Map<number, (reply: ClientReply) => void>();
  private nextId = 1;
  private placed = 0;
  /** socket key → index of the process holding it */
  readonly owner = new Map<string, number>();

  readonly size: number;

  constructor(size: number) {
    this.size = size;
    for (let i = 0; i < size; i++) {
      const child = fork(join(BENCH, "lib", "client.ts"), [], {
        serialization: "advanced",
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        execArgv: ["--max-old-space-size=2048"],
      });
      child.on("message", (msg: { id: number; reply: ClientReply }) => {
        const done = this.waiting.get(msg.id);
        this.waiting.delete(msg.id);
        done?.(msg.reply);
      });
      child.on("exit", (code, signal) => {
        if (this.closing) return;
        for (const [, done] of this.waiting) done({ ok: false, error: `client ${i} exited (${code ?? signal})` });
        this.waiting.clear();
      });
      this.procs.push(child);
    }
  }

  private closing = false;

  get pids(): number[] {
    return this.procs.map((p) => p.pid!);
  }

  request(index: number, req: ClientRequest): Promise<ClientReply> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.procs[index]!.send({ id, req });
    });
  }

  private async all(req: (index: number) => ClientRequest | null): Promise<ClientReply[]> {
    const replies = await Promise.all(
      this.procs.map((_, i) => {
        const r = req(i);
        return r ? this.request(i, r) : Promise.resolve({ ok: true } as ClientReply);
      }),
    );
    const bad = replies.find((r) => !r.ok);
    if (bad) throw new Error(`client process failed: ${bad.error}`);
    return replies;
  }

  /** Opens sockets, spread round-robin over the processes; answers how many opened. */
  async open(specs: SocketSpec[], opts: { width?: number; timeoutMs?: number } = {}): Promise<{ opened: number; failed: number; errors: string[] }> {
    const perProc: SocketSpec[][] = this.procs.map(() => []);
    for (const spec of specs) {
      const i = this.placed++ % this.size;
      this.owner.set(spec.key, i);
      perProc[i]!.push(spec);
    }
    const replies = await this.all((i) =>
      perProc[i]!.length ? { cmd: "open", sockets: perProc[i]!, width: opts.width ?? 16, timeoutMs: opts.timeoutMs ?? 30_000 } : null,
    );
    return {
      opened: replies.reduce((n, r) => n + ((r.opened as number) ?? 0), 0),
      failed: replies.reduce((n, r) => n + ((r.failed as number) ?? 0), 0),
      errors: replies.flatMap((r) => (r.errors as string[]) ?? []),
    };
  }

  async close(keys?: string[]): Promise<void> {
    if (!keys) {
      await this.all(() => ({ cmd: "close" }));
      this.owner.clear();
      return;
    }
    const perProc: string[][] = this.procs.map(() => []);
    for (const k of keys) {
      const i = this.owner.get(k);
      if (i !== undefined) perProc[i]!.push(k);
      this.owner.delete(k);
    }
    await this.all((i) => (perProc[i]!.length ? { cmd: "close", keys: perProc[i]! } : null));
  }

  /**
   * Sends `count` messages at `rate` per second in total from the given sender sockets;
   * each process sends from the senders it holds, at its share of the rate.
   */
  async load(
    stage: string,
    senders: string[],
    rate: number,
    count: number,
    opts: { contentBytes: number; drainMs: number; abortAfterMs: number },
  ): Promise<LoadResult> {
    const perProc: string[][] = this.procs.map(() => []);
    for (const k of senders) {
      const i = this.owner.get(k);
      if (i === undefined) throw new Error(`sender ${k} is not open`);
      perProc[i]!.push(k);
    }
    const active = perProc.map((s, i) => ({ s, i })).filter((x) => x.s.length > 0);
    const startAt = now() + 150;
    let assigned = 0;
    const plans = new Map<number, LoadPlan>();
    active.forEach(({ s, i }, n) => {
      const share = s.length / senders.length;
      const c = n === active.length - 1 ? count - assigned : Math.round(count * share);
      assigned += c;
      if (c <= 0) return;
      // Processes are offset by a fraction of the gap so their sends interleave.
      plans.set(i, { stage, senders: s, rate: rate * share, count: c, startAt: startAt + (n * 1000) / rate, ...opts });
    });
    const replies = await this.all((i) => {
      const plan = plans.get(i);
      return plan ? { cmd: "load", plan } : null;
    });
    return {
      sent: replies.reduce((n, r) => n + ((r.sent as number) ?? 0), 0),
      pending: replies.reduce((n, r) => n + ((r.pending as number) ?? 0), 0),
      aborted: replies.some((r) => r.aborted === true),
    };
  }

  /** Waits until the given numbers of conversation/device deliveries have been seen, or the timeout. */
  async waitDeliveries(stage: string, conv: number, sync: number, timeoutMs: number): Promise<{ conv: number; sync: number }> {
    const deadline = now() + timeoutMs;
    for (;;) {
      const replies = await this.all(() => ({ cmd: "counts", stage }));
      const got = {
        conv: replies.reduce((n, r) => n + ((r.conv as number) ?? 0), 0),
        sync: replies.reduce((n, r) => n + ((r.sync as number) ?? 0), 0),
      };
      if ((got.conv >= conv && got.sync >= sync) || now() >= deadline) return got;
      await sleep(50);
    }
  }

  async collect(stage: string): Promise<Merged> {
    const replies = await this.all(() => ({ cmd: "collect", stage }));
    const m: Merged = { ack: [], conv: [], sync: [], errors: {}, sent: 0, unacked: 0, firstSend: Infinity, lastRecv: 0, lagMax: 0, lagMean: 0 };
    let lagWeighted = 0;
    for (const r of replies) {
      const d = r.data as StageData | undefined;
      if (!d) continue;
      for (const v of d.ack) m.ack.push(v);
      for (const v of d.conv) m.conv.push(v);
      for (const v of d.sync) m.sync.push(v);
      for (const [k, v] of Object.entries(d.errors)) m.errors[k] = (m.errors[k] ?? 0) + v;
      m.sent += d.sent;
      m.unacked += d.unacked;
      m.firstSend = Math.min(m.firstSend, d.firstSend);
      m.lastRecv = Math.max(m.lastRecv, d.lastRecv);
      m.lagMax = Math.max(m.lagMax, d.lagMax);
      lagWeighted += d.lagMean * d.sent;
    }
    m.lagMean = m.sent ? lagWeighted / m.sent : 0;
    return m;
  }

  async openCount(): Promise<number> {
    const replies = await this.all(() => ({ cmd: "stat" }));
    return replies.reduce((n, r) => n + ((r.open as number) ?? 0), 0);
  }

  async shutdown(): Promise<void> {
    this.closing = true;
    await Promise.race([Promise.all(this.procs.map((_, i) => this.request(i, { cmd: "exit" }))), sleep(5000)]);
    for (const p of this.procs) if (p.exitCode === null) p.kill("SIGKILL");
  }

  /** For an abrupt exit: no waiting. */
  killNow(): void {
    this.closing = true;
    for (const p of this.procs) if (p.exitCode === null) p.kill("SIGKILL");
  }
}
