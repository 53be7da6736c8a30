/** Helpers for tests inside workerd: drive the Worker through its own fetch, as a client would. */
import { exports } from "cloudflare:workers";

export const BASE = "http://chat.test/v1";

export interface Session {
  user_id: string;
  device_id: string;
  token: string;
}

let counter = 0;
export const uniqueHandle = (prefix = "u") => `${prefix}_${Date.now().toString(36)}_${(counter++).toString(36)}`.slice(0, 32);

/**
 * A client address of its own for each request unless one is given: the per-address limits
 * (registrations, failed logins) are for one client, not for the whole test run.
 */
const anyAddress = () => `10.${Array.from(crypto.getRandomValues(new Uint8Array(3))).join(".")}`;

export async function call(method: string, path: string, opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { "cf-connecting-ip": anyAddress(), ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await exports.default.fetch(new Request(`${BASE}${path}`, { method, headers, body }));
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as any) : null };
}

export async function register(handle = uniqueHandle()): Promise<Session & { handle: string }> {
  const res = await call("POST", "/auth/register", { body: { handle, password: "correct horse" } });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.json)}`);
  return { ...res.json, handle };
}

export async function group(owner: Session, members: Session[], name = "g") {
  const res = await call("POST", "/conversations", { token: owner.token, body: { type: "group", name, members: members.map((m) => m.user_id) } });
  if (res.status !== 201) throw new Error(`group failed: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json.conversation_id as string;
}

export async function send(s: Session, conversationId: string, clientMessageId: string, content = clientMessageId) {
  return call("POST", `/conversations/${conversationId}/messages`, {
    token: s.token,
    body: { client_message_id: clientMessageId, kind: "text", content },
  });
}

/** Opens a socket through the Worker; frames are collected and awaited by predicate. */
export async function openSocket(path: string, token: string) {
  const res = await exports.default.fetch(new Request(`${BASE}${path}${path.includes("?") ? "&" : "?"}token=${token}`, { headers: { upgrade: "websocket" } }));
  if (!res.webSocket) return { status: res.status, socket: null };
  const ws = res.webSocket;
  ws.accept();
  return { status: res.status, socket: new FrameCollector(ws) };
}

export class FrameCollector {
  readonly frames: any[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      this.frames.push(JSON.parse(e.data as string));
      this.notify();
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.notify();
    });
  }

  private notify() {
    for (const w of this.waiters.splice(0)) w();
  }

  send(frame: unknown) {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  async waitFor(pred: (f: any) => boolean, timeoutMs = 5000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.frames.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out; frames so far: ${JSON.stringify(this.frames).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async waitClosed(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("socket did not close");
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closed;
  }
}
