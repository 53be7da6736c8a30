/** Extra helpers for the per-endpoint API tests (helpers.ts stays as it is). */
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { BASE, call, register, type Session } from "./helpers";

/** The TOKEN_SECRET the workers project binds (vitest.config.ts). */
export const TEST_SECRET = "test-secret-0123456789abcdef0123456789abcdef";

/** A handle unique across test files running at the same time: 3-32 chars of [a-z0-9_]. */
export function freshHandle(prefix = "t"): string {
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => (b % 36).toString(36)).join("");
  return `${prefix}_${Date.now().toString(36)}_${rand}`.slice(0, 32);
}

/** A registered user with a collision-proof handle. */
export const user = (prefix = "t") => register(freshHandle(prefix));

export type User = Session & { handle: string };

/** Asserts the contract's error shape and code (CONTRACT.md section 1). */
export function expectError(res: { status: number; json: any; headers?: Headers }, status: number, code: string): void {
  expect({ status: res.status, code: res.json?.error?.code }).toEqual({ status, code });
  if (res.headers) expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(Object.keys(res.json)).toEqual(["error"]);
  expect(typeof res.json.error.message).toBe("string");
  expect(res.json.error.message.length).toBeGreaterThan(0);
}

/** A syntactically valid conversation id that was never issued. */
export function fakeConversationId(prefix: "g" | "c" = "g"): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  return `${prefix}_${Array.from(crypto.getRandomValues(new Uint8Array(26)), (b) => alphabet[b % 32]).join("")}`;
}

/** A syntactically plausible user id that belongs to nobody. */
export const fakeUserId = (i: number | string = 0) => `u_fake${i}${Math.random().toString(36).slice(2, 10)}`;

export async function direct(a: Session, b: Session) {
  return call("POST", "/conversations", { token: a.token, body: { type: "direct", peer: b.user_id } });
}

export async function history(s: Session, conversationId: string, query = "") {
  return call("GET", `/conversations/${conversationId}/messages${query ? `?${query}` : ""}`, { token: s.token });
}

export async function seqs(s: Session, conversationId: string, query = "") {
  const res = await history(s, conversationId, query);
  expect(res.status).toBe(200);
  return (res.json.messages as any[]).map((m) => m.seq as number);
}

export async function mark(s: Session, conversationId: string, kind: "read" | "delivered", upToSeq: unknown) {
  return call("POST", `/conversations/${conversationId}/${kind}`, { token: s.token, body: { up_to_seq: upToSeq } });
}

export async function list(s: Session, query = "") {
  return call("GET", `/conversations${query ? `?${query}` : ""}`, { token: s.token });
}

/**
 * Retries an assertion until it holds or `timeoutMs` passes. The inbox trails an ack by
 * up to 1 s; the margin above that is for shared 2-core CI machines, where one slow
 * isolate start took 3.8 s. Latency itself is measured by the bench, not here.
 */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 8000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(intervalMs);
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw fetch through the Worker, for what `call()` cannot express (odd headers, upgrades). */
export async function rawFetch(path: string, init: RequestInit = {}) {
  const res = await exports.default.fetch(new Request(`${BASE}${path}`, init));
  return res;
}

/** The JSON of a response that may not have one. */
export async function jsonOf(res: Response): Promise<any> {
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}


/**
 * Users written straight into the D1 directory, for tests that need many members but
 * never act as them (registering through the API costs a PBKDF2 hash each). They have
 * no devices, so no tokens.
 */
export async function seedUsers(n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `u_seed${i}_${crypto.randomUUID().replaceAll("-", "")}`);
  const stmt = env.DB.prepare("INSERT INTO users (id, handle, display_name, password_hash, created_at) VALUES (?, ?, NULL, 'x', ?)");
  await env.DB.batch(ids.map((id) => stmt.bind(id, freshHandle("s"), Date.now())));
  return ids;
}
