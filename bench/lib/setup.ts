/**
 * Users, conversations and socket addresses for both servers.
 *
 * Users are made two ways:
 * - `register`: through the real HTTP API (POST /v1/auth/register: PBKDF2 at 100k
 *   iterations, ~50-100 ms each), used for a few users to check that path;
 * - `seed` (the documented shortcut): rows written straight into D1 (`users`, `devices`)
 *   and a device token signed with jose under the run's TOKEN_SECRET, exactly as
 *   worker/lib/token.ts issues it. Every measured path stays real: the Worker verifies
 *   the token and looks the device up in D1 on every upgrade and request.
 *
 * Conversations are always created through the real HTTP API (POST /v1/conversations).
 * The baseline has no accounts: its sockets carry the same user/device ids in the URL.
 */
import { pbkdf2Sync, randomBytes } from "node:crypto";
import { newId } from "../../shared/ids.ts";
import { SignJWT } from "jose";
import type { ServerHandle } from "./server.ts";
import { inParallel } from "./util.ts";

export interface BenchUser {
  userId: string;
  deviceId: string;
  token: string;
  handle: string;
}

export interface Room {
  name: string;
  /** The real conversation id (g_…). */
  realId: string;
  members: BenchUser[];
}



export const PASSWORD = "bench-password-0123";

/** One real PBKDF2 hash (the server's format), shared by every seeded user: they can log in too. */
function passwordHash(): string {
  const salt = randomBytes(16);
  const hash = pbkdf2Sync(PASSWORD, salt, 100_000, 32, "sha256");
  return `pbkdf2-sha256$100000$${salt.toString("base64")}$${hash.toString("base64")}`;
}

export class Accounts {
  private readonly tag = randomBytes(3).toString("hex");
  private counter = 0;
  private hash: string | null = null;
  /** Milliseconds each HTTP registration took. */
  readonly registrationMs: number[] = [];

  private readonly real: ServerHandle;
  private readonly tokenSecret: string;

  constructor(real: ServerHandle, tokenSecret: string) {
    this.real = real;
    this.tokenSecret = tokenSecret;
  }

  private handle(prefix: string): string {
    return `b${this.tag}_${prefix}${this.counter++}`.slice(0, 32);
  }

  private async sign(userId: string, deviceId: string): Promise<string> {
    return new SignJWT({ did: deviceId })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(userId)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + 24 * 3600)
      .sign(new TextEncoder().encode(this.tokenSecret));
  }

  /** Writes `n` users with one device each into D1, and signs their tokens. */
  async seed(n: number, prefix: string): Promise<BenchUser[]> {
    this.hash ??= passwordHash();
    const db = await this.real.mf.getD1Database("DB");
    const users: BenchUser[] = [];
    for (let i = 0; i < n; i++) {
      const userId = newId("u");
      const deviceId = newId("d");
      users.push({ userId, deviceId, handle: this.handle(prefix), token: await this.sign(userId, deviceId) });
    }
    const createdAt = Date.now();
    // Literal multi-row INSERTs: every value is [a-z0-9_] or base64, nothing to escape, and
    // one statement per 250 rows is far quicker than bound statements through the D1 proxy.
    for (let i = 0; i < users.length; i += 250) {
      const slice = users.slice(i, i + 250);
      const userRows = slice.map((u) => `('${u.userId}', '${u.handle}', NULL, '${this.hash}', ${createdAt})`).join(", ");
      const deviceRows = slice.map((u) => `('${u.deviceId}', '${u.userId}', 'bench', ${createdAt})`).join(", ");
      await db.exec(`INSERT INTO users (id, handle, display_name, password_hash, created_at) VALUES ${userRows};`);
      await db.exec(`INSERT INTO devices (id, user_id, name, created_at) VALUES ${deviceRows};`);
    }
    // A seeded token must work exactly like an issued one.
    const me = await this.http("GET", "/v1/me", users[0]!.token);
    if (me.status !== 200) throw new Error(`seeded token refused by GET /v1/me: ${me.status} ${JSON.stringify(me.body)}`);
    return users;
  }

  /** Registers `n` users through POST /v1/auth/register, a few at a time. */
  async register(n: number, prefix: string, width = 4): Promise<BenchUser[]> {
    return inParallel(Array.from({ length: n }, (_, i) => i), width, async () => {
      const handle = this.handle(prefix);
      const t0 = performance.now();
      const res = await this.http("POST", "/v1/auth/register", null, { handle, password: PASSWORD });
      this.registrationMs.push(performance.now() - t0);
      if (res.status !== 201) throw new Error(`register ${handle}: ${res.status} ${JSON.stringify(res.body)}`);
      const body = res.body as { user_id: string; device_id: string; token: string };
      return { userId: body.user_id, deviceId: body.device_id, token: body.token, handle };
    });
  }

  /** A group created by members[0] through POST /v1/conversations. */
  async group(name: string, members: BenchUser[]): Promise<Room> {
    const [creator, ...others] = members;
    const res = await this.http("POST", "/v1/conversations", creator!.token, {
      type: "group",
      name,
      members: others.map((u) => u.userId),
    });
    if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${JSON.stringify(res.body)}`);
    return { name, realId: (res.body as { conversation_id: string }).conversation_id, members };
  }

  async http(method: string, path: string, token: string | null, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${this.real.url}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed };
  }
}

/** Where sockets of one server are opened. */
export interface Target {
  name: "edge-chat" | "baseline";
  server: ServerHandle;
  convUrl(room: Room, user: BenchUser): string;
  syncUrl(user: BenchUser): string;
  /** Whatever the server needs to know about a room before its sockets open. */
  prepare(room: Room): Promise<void>;
}

const ws = (http: string) => http.replace(/^http/, "ws");

export function realTarget(server: ServerHandle): Target {
  return {
    name: "edge-chat",
    server,
    convUrl: (room, user) => `${ws(server.url)}/v1/conversations/${room.realId}/ws?token=${user.token}`,
    syncUrl: (user) => `${ws(server.url)}/v1/sync?token=${user.token}`,
    prepare: async () => {},
  };
}

export function baselineTarget(server: ServerHandle): Target {
  const q = (u: BenchUser) => `user=${encodeURIComponent(u.userId)}&device=${encodeURIComponent(u.deviceId)}`;
  return {
    name: "baseline",
    server,
    convUrl: (room, user) => `${ws(server.url)}/room/${room.name}/ws?${q(user)}`,
    syncUrl: (user) => `${ws(server.url)}/sync?${q(user)}`,
    prepare: async (room) => {
      const res = await fetch(`${server.url}/room/${room.name}/members`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ members: room.members.map((m) => m.userId) }),
      });
      if (res.status !== 204) throw new Error(`baseline room ${room.name}: ${res.status}`);
    },
  };
}
