/**
 * A test client of the public interface: HTTP with fetch, WebSockets with `ws` (so the
 * handshake's HTTP status and the close codes are visible), and a frame collector.
 */
import { randomUUID } from "node:crypto";
import WebSocket from "ws";

export interface Res<T = any> {
  status: number;
  headers: Headers;
  json: T;
  text: string;
}

export interface Session {
  user_id: string;
  device_id: string;
  token: string;
  handle: string;
  password: string;
}

export const PASSWORD = "correct horse battery";

let counter = 0;
/** A handle unique to this run: 3–32 of [a-z0-9_]. */
export function uniqueHandle(prefix = "u"): string {
  const tail = `${Date.now().toString(36)}${(counter++).toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`;
  return `${prefix}_${tail}`.slice(0, 32);
}

export const cmid = (prefix = "c") => `${prefix}-${randomUUID()}`;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a non-undefined value, or fails with the last observation. */
export async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `; last error: ${String(last)}` : ""}`);
    }
    await sleep(50);
  }
}

export class Api {
  constructor(readonly baseUrl: string) {}

  get wsBase(): string {
    return this.baseUrl.replace(/^http/, "ws");
  }

  async call<T = any>(
    method: string,
    path: string,
    opts: { token?: string; body?: unknown; raw?: string | Uint8Array; headers?: Record<string, string> } = {},
  ): Promise<Res<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    let body: string | Uint8Array | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) {
      headers["content-type"] = "application/json";
    }
    const res = await fetch(`${this.baseUrl}/v1${path}`, { method, headers, body: body as BodyInit | undefined, signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    let json: any = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    return { status: res.status, headers: res.headers, json, text };
  }

  get = <T = any>(path: string, token?: string) => this.call<T>("GET", path, { token });
  post = <T = any>(path: string, token: string | undefined, body?: unknown) => this.call<T>("POST", path, { token, body });
  del = <T = any>(path: string, token?: string) => this.call<T>("DELETE", path, { token });

  async register(prefix = "u", extra: { display_name?: string } = {}): Promise<Session> {
    const handle = uniqueHandle(prefix);
    const res = await this.post("/auth/register", undefined, { handle, password: PASSWORD, ...extra });
    if (res.status !== 201) throw new Error(`register ${handle}: ${res.status} ${res.text}`);
    return { ...res.json, handle, password: PASSWORD };
  }

  /** A further device of an existing user. */
  async login(user: { handle: string; password: string }, device_name?: string): Promise<Session> {
    const res = await this.post("/auth/login", undefined, { handle: user.handle, password: user.password, ...(device_name ? { device_name } : {}) });
    if (res.status !== 200) throw new Error(`login ${user.handle}: ${res.status} ${res.text}`);
    return { ...res.json, handle: user.handle, password: user.password };
  }

  async group(owner: Session, members: { user_id: string }[], name = "group"): Promise<string> {
    const res = await this.post("/conversations", owner.token, { type: "group", name, members: members.map((m) => m.user_id) });
    if (res.status !== 201) throw new Error(`create group: ${res.status} ${res.text}`);
    return res.json.conversation_id;
  }

  async direct(a: Session, b: { user_id: string }): Promise<string> {
    const res = await this.post("/conversations", a.token, { type: "direct", peer: b.user_id });
    if (res.status !== 201 && res.status !== 200) throw new Error(`create direct: ${res.status} ${res.text}`);
    return res.json.conversation_id;
  }

  send(s: Session, conversationId: string, clientMessageId = cmid(), content: string = clientMessageId, kind = "text") {
    return this.post(`/conversations/${conversationId}/messages`, s.token, { client_message_id: clientMessageId, kind, content });
  }

  /** Sends and insists on 201. */
  async sendOk(s: Session, conversationId: string, clientMessageId = cmid(), content: string = clientMessageId): Promise<any> {
    const res = await this.send(s, conversationId, clientMessageId, content);
    if (res.status !== 201) throw new Error(`send: ${res.status} ${res.text}`);
    return res.json;
  }

  /** The whole history, paged forward with after_seq. */
  async allMessages(s: Session, conversationId: string, pageSize = 200): Promise<any[]> {
    const out: any[] = [];
    let after = 0;
    for (;;) {
      const res = await this.get(`/conversations/${conversationId}/messages?after_seq=${after}&limit=${pageSize}`, s.token);
      if (res.status !== 200) throw new Error(`history: ${res.status} ${res.text}`);
      out.push(...res.json.messages);
      if (res.json.messages.length === 0 || res.json.next_after_seq === null) return out;
      after = res.json.next_after_seq;
    }
  }

  /** Opens a WebSocket on `path` (token as ?token=). Never throws on a refused handshake: see `status`. */
  openSocket(path: string, token?: string, query: Record<string, string> = {}): Promise<Socket> {
    const params = new URLSearchParams(query);
    if (token !== undefined) params.set("token", token);
    const qs = params.toString();
    return Socket.open(`${this.wsBase}/v1${path}${qs ? `?${qs}` : ""}`);
  }

  /** A device socket that must open. */
  async sync(s: Session, since?: string): Promise<Socket> {
    const ws = await this.openSocket("/sync", s.token, since === undefined ? {} : { since });
    if (ws.status !== 101) throw new Error(`device socket refused: ${ws.status} ${ws.refusal}`);
    return ws;
  }

  /** A conversation socket that must open. */
  async convSocket(s: Session, conversationId: string): Promise<Socket> {
    const ws = await this.openSocket(`/conversations/${conversationId}/ws`, s.token);
    if (ws.status !== 101) throw new Error(`conversation socket refused: ${ws.status} ${ws.refusal}`);
    return ws;
  }
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/**
 * One WebSocket: every text frame parsed and kept in order; `waitFor` finds frames by
 * predicate, already received or still to come. `status` is 101 once open, or the HTTP
 * status of a refused handshake (then `refusal` holds the body).
 */
export class Socket {
  status = 0;
  refusal = "";
  readonly frames: any[] = [];
  /** Raw non-JSON or binary frames. */
  readonly oddities: unknown[] = [];
  closeInfo: CloseInfo | null = null;
  readonly closed: Promise<CloseInfo>;
  private onClosed!: (c: CloseInfo) => void;
  private waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((r) => (this.onClosed = r));
  }

  static open(url: string, timeoutMs = 15_000, headers: Record<string, string> = {}): Promise<Socket> {
    const ws = new WebSocket(url, { handshakeTimeout: timeoutMs, headers });
    const s = new Socket(ws);
    return new Promise((resolve) => {
      let settled = false;
      const settle = () => {
        if (!settled) {
          settled = true;
          resolve(s);
        }
      };
      ws.on("unexpected-response", (req, res) => {
        s.status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          s.refusal = Buffer.concat(chunks).toString("utf8");
          req.destroy();
          s.finish({ code: 0, reason: "handshake refused" });
          settle();
        });
        res.on("error", () => settle());
      });
      ws.on("open", () => {
        s.status = 101;
        settle();
      });
      ws.on("message", (data, isBinary) => {
        if (isBinary) {
          s.oddities.push(data);
        } else {
          const text = data.toString();
          try {
            s.frames.push(JSON.parse(text));
          } catch {
            s.oddities.push(text);
          }
        }
        s.wake();
      });
      ws.on("close", (code, reason) => {
        s.finish({ code, reason: reason.toString() });
        settle();
      });
      ws.on("error", () => {
        // 'close' follows; a refused handshake is reported through 'unexpected-response'
        settle();
      });
    });
  }

  /** The handshake's refusal as the contract's error body. */
  get refusalJson(): any {
    try {
      return JSON.parse(this.refusal);
    } catch {
      return undefined;
    }
  }

  private finish(info: CloseInfo) {
    if (this.closeInfo) return;
    this.closeInfo = info;
    this.onClosed(info);
    this.wake();
  }

  private wake() {
    for (const w of [...this.waiters]) w();
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  sendBinary(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }

  /** Frames of one type. */
  ofType(type: string): any[] {
    return this.frames.filter((f) => f?.type === type);
  }

  /**
   * Resolves with the first frame at index ≥ `from` matching `pred`, waiting up to `timeoutMs`.
   * Rejects early if the socket closes before one arrives.
   */
  waitFor(pred: (f: any) => boolean, timeoutMs = 5_000, what = "frame", from = 0): Promise<any> {
    return this.waitForCount(pred, 1, timeoutMs, what, from).then((all) => all[0]);
  }

  /** Resolves with the first `n` frames matching `pred` (index ≥ `from`). */
  waitForCount(pred: (f: any) => boolean, n: number, timeoutMs = 5_000, what = "frames", from = 0): Promise<any[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hits = this.frames.slice(from).filter(pred);
        if (hits.length >= n) {
          done();
          resolve(hits.slice(0, n));
          return true;
        }
        if (this.closeInfo) {
          done();
          reject(new Error(`socket closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting for ${n} × ${what}; got ${hits.length}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        const hits = this.frames.slice(from).filter(pred).length;
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${n} × ${what}; got ${hits}; last frames: ${JSON.stringify(this.frames.slice(-3)).slice(0, 600)}`));
      }, timeoutMs);
      const waiter = () => void check();
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
      check();
    });
  }

  /** Resolves with the close code and reason, or rejects after `timeoutMs`. */
  async waitClose(timeoutMs = 5_000): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`socket not closed within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ping round trip: proves the socket is open and everything sent before it has been seen. */
  async roundTrip(timeoutMs = 5_000): Promise<void> {
    const from = this.frames.length;
    this.send({ type: "ping" });
    await this.waitFor((f) => f.type === "pong", timeoutMs, "pong", from);
  }

  close(): Promise<CloseInfo> {
    if (!this.closeInfo) {
      try {
        this.ws.close(1000, "bye");
      } catch {
        this.ws.terminate();
      }
    }
    return this.waitClose(5_000).catch(() => {
      this.ws.terminate();
      return { code: 1006, reason: "terminated" };
    });
  }
}

/** Closes every socket given, ignoring ones already closed. */
export async function closeAll(sockets: (Socket | undefined | null)[]): Promise<void> {
  await Promise.all(sockets.filter((s): s is Socket => !!s).map((s) => s.close()));
}
