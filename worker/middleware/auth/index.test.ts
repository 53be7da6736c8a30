/** The auth middleware, through the Worker's own fetch: CONTRACT.md sections 1 and 3. */
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { expectError, jsonOf, rawFetch, TEST_SECRET, user } from "../../../test/workers/api-helpers";
import { call, group } from "../../../test/workers/helpers";

const enc = (s: string) => new TextEncoder().encode(s);

async function sign(claims: { sub?: string; did?: string }, opts: { secret?: string; exp?: number | null } = {}) {
  let jwt = new SignJWT(claims.did === undefined ? {} : { did: claims.did }).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt();
  if (claims.sub !== undefined) jwt = jwt.setSubject(claims.sub);
  const exp = opts.exp === undefined ? Math.floor(Date.now() / 1000) + 3600 : opts.exp;
  if (exp !== null) jwt = jwt.setExpirationTime(exp);
  return jwt.sign(enc(opts.secret ?? TEST_SECRET));
}

const b64url = (s: string) => btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");

/** A WebSocket upgrade through the Worker; a socket that opens is closed again at once. */
async function upgrade(path: string, auth: { query?: string; bearer?: string }) {
  const sep = path.includes("?") ? "&" : "?";
  const url = auth.query === undefined ? path : `${path}${sep}token=${encodeURIComponent(auth.query)}`;
  const headers: Record<string, string> = { upgrade: "websocket" };
  if (auth.bearer !== undefined) headers.authorization = `Bearer ${auth.bearer}`;
  const res = await rawFetch(url, { headers });
  if (res.webSocket) {
    res.webSocket.accept();
    res.webSocket.close(1000, "test done");
    return { status: res.status, json: null };
  }
  return { status: res.status, json: await jsonOf(res) };
}

describe("auth middleware: what is refused", () => {
  it("answers 401 unauthorized without a token on every authenticated route", async () => {
    const a = await user();
    const id = await group(a, []);
    const routes: [string, string, unknown?][] = [
      ["GET", "/me"],
      ["DELETE", `/devices/${a.device_id}`],
      ["GET", `/users/${a.user_id}`],
      ["GET", `/users?handle=${a.handle}`],
      ["GET", "/conversations"],
      ["POST", "/conversations", { type: "group", name: "x", members: [] }],
      ["GET", `/conversations/${id}`],
      ["POST", `/conversations/${id}/members`, { user_ids: [a.user_id] }],
      ["DELETE", `/conversations/${id}/members/${a.user_id}`],
      ["POST", `/conversations/${id}/messages`, { client_message_id: "m", kind: "text", content: "hi" }],
      ["GET", `/conversations/${id}/messages`],
      ["POST", `/conversations/${id}/read`, { up_to_seq: 0 }],
      ["POST", `/conversations/${id}/delivered`, { up_to_seq: 0 }],
    ];
    for (const [method, path, body] of routes) {
      const res = await call(method, path, { body });
      expect.soft(res.status, `${method} ${path}`).toBe(401);
      if (res.status === 401) expectError(res, 401, "unauthorized");
    }
    // Nothing above went through: the device still works and the group is intact.
    expect((await call("GET", "/me", { token: a.token })).status).toBe(200);
    expect((await call("GET", `/conversations/${id}`, { token: a.token })).json.members).toHaveLength(1);
  });

  it("answers 401 for a malformed authorization header", async () => {
    const a = await user();
    const headers = [
      `Token ${a.token}`,
      `Basic ${btoa(`${a.handle}:correct horse`)}`,
      "Bearer",
      "Bearer ",
      `Bearer ${a.token} extra`,
      `Bearer${a.token}`,
      a.token,
      "Bearer not-a-jwt",
      "Bearer a.b.c",
      `Bearer ${a.token.slice(0, -4)}`,
      `Bearer ${a.token}x`,
    ];
    for (const authorization of headers) {
      const res = await call("GET", "/me", { headers: { authorization } });
      expect.soft(res.status, authorization.slice(0, 40)).toBe(401);
      if (res.status === 401) expectError(res, 401, "unauthorized");
    }
  });

  it("accepts the scheme case-insensitively, as RFC 7235 has it", async () => {
    const a = await user();
    const res = await call("GET", "/me", { headers: { authorization: `bearer ${a.token}` } });
    expect(res.status).toBe(200);
  });

  it("accepts a token it did not issue but signed with the right secret (positive control)", async () => {
    const a = await user();
    const token = await sign({ sub: a.user_id, did: a.device_id });
    const res = await call("GET", "/me", { token });
    expect(res.status).toBe(200);
    expect(res.json.user_id).toBe(a.user_id);
  });

  it("refuses a token signed with another secret", async () => {
    const a = await user();
    const forged = await sign({ sub: a.user_id, did: a.device_id }, { secret: "another-secret-0123456789abcdef0123456789abcdef" });
    expectError(await call("GET", "/me", { token: forged }), 401, "unauthorized");
    expectError(await call("GET", "/conversations", { token: forged }), 401, "unauthorized");
  });

  it("refuses a token whose payload was altered after signing", async () => {
    const a = await user();
    const b = await user();
    const [header, , signature] = a.token.split(".");
    const payload = b64url(JSON.stringify({ did: b.device_id, sub: b.user_id, iat: 1, exp: 9_999_999_999 }));
    expectError(await call("GET", "/me", { token: `${header}.${payload}.${signature}` }), 401, "unauthorized");
  });

  it("refuses an unsigned (alg none) token", async () => {
    const a = await user();
    const header = b64url(JSON.stringify({ alg: "none", typ: "JWT" }));
    const payload = b64url(JSON.stringify({ sub: a.user_id, did: a.device_id, exp: Math.floor(Date.now() / 1000) + 3600 }));
    expectError(await call("GET", "/me", { token: `${header}.${payload}.` }), 401, "unauthorized");
  });

  it("refuses an expired token", async () => {
    const a = await user();
    const expired = await sign({ sub: a.user_id, did: a.device_id }, { exp: Math.floor(Date.now() / 1000) - 60 });
    expectError(await call("GET", "/me", { token: expired }), 401, "unauthorized");
    expectError(await call("GET", "/conversations", { token: expired }), 401, "unauthorized");
  });

  it("refuses a token with no expiry, no device or no subject", async () => {
    const a = await user();
    for (const token of [
      await sign({ sub: a.user_id, did: a.device_id }, { exp: null }),
      await sign({ sub: a.user_id }),
      await sign({ did: a.device_id }),
    ]) {
      expectError(await call("GET", "/me", { token }), 401, "unauthorized");
    }
  });

  it("refuses a token pairing one user with another user's device", async () => {
    const a = await user();
    const b = await user();
    const mixed = await sign({ sub: a.user_id, did: b.device_id });
    expectError(await call("GET", "/me", { token: mixed }), 401, "unauthorized");
  });

  it("refuses a token naming a device that never existed", async () => {
    const a = await user();
    const token = await sign({ sub: a.user_id, did: "d_doesnotexist" });
    expectError(await call("GET", "/me", { token }), 401, "unauthorized");
  });

  it("refuses the token of a deleted device at once, and only that device's", async () => {
    const a = await user();
    const second = await call("POST", "/auth/login", { body: { handle: a.handle, password: "correct horse" } });
    expect(second.status).toBe(200);
    const id = await group(a, []);

    const del = await call("DELETE", `/devices/${second.json.device_id}`, { token: a.token });
    expect(del.status).toBe(204);

    for (const [method, path] of [
      ["GET", "/me"],
      ["GET", "/conversations"],
      ["GET", `/conversations/${id}`],
      ["GET", `/conversations/${id}/messages`],
    ] as const) {
      expectError(await call(method, path, { token: second.json.token }), 401, "unauthorized");
    }
    const send = await call("POST", `/conversations/${id}/messages`, {
      token: second.json.token,
      body: { client_message_id: "after-revoke", kind: "text", content: "x" },
    });
    expectError(send, 401, "unauthorized");
    // The refused send was not stored; the other device still works.
    const hist = await call("GET", `/conversations/${id}/messages`, { token: a.token });
    expect(hist.status).toBe(200);
    expect(hist.json.messages).toEqual([]);
  });

  it("refuses a device that deleted itself, on its very next request", async () => {
    const a = await user();
    expect((await call("DELETE", `/devices/${a.device_id}`, { token: a.token })).status).toBe(204);
    expectError(await call("GET", "/me", { token: a.token }), 401, "unauthorized");
    // Even re-signed with a fresh expiry, the device stays dead.
    const resigned = await sign({ sub: a.user_id, did: a.device_id });
    expectError(await call("GET", "/me", { token: resigned }), 401, "unauthorized");
  });

  it("needs no token for /v1/health", async () => {
    const res = await call("GET", "/health");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ok: true });
  });
});

describe("auth middleware: ?token= only on WebSocket routes", () => {
  it("refuses ?token= on plain HTTP routes", async () => {
    const a = await user();
    const id = await group(a, []);
    const q = `token=${encodeURIComponent(a.token)}`;
    for (const [method, path, body] of [
      ["GET", `/me?${q}`],
      ["GET", `/users/${a.user_id}?${q}`],
      ["GET", `/users?handle=${a.handle}&${q}`],
      ["GET", `/conversations?${q}`],
      ["GET", `/conversations/${id}?${q}`],
      ["GET", `/conversations/${id}/messages?${q}`],
      ["POST", `/conversations/${id}/messages?${q}`, { client_message_id: "q", kind: "text", content: "x" }],
      ["POST", `/conversations/${id}/read?${q}`, { up_to_seq: 0 }],
      ["DELETE", `/devices/${a.device_id}?${q}`],
    ] as [string, string, unknown?][]) {
      const res = await call(method, path, { body });
      expect.soft(res.status, `${method} ${path}`).toBe(401);
      if (res.status === 401) expectError(res, 401, "unauthorized");
    }
    // The DELETE above was refused, so the device is still live.
    expect((await call("GET", "/me", { token: a.token })).status).toBe(200);
    expect((await call("GET", `/conversations/${id}/messages`, { token: a.token })).json.messages).toEqual([]);
  });

  it("takes ?token= on /v1/sync", async () => {
    const a = await user();
    expect((await upgrade("/sync", { query: a.token })).status).toBe(101);
  });

  it("takes ?token= on /v1/conversations/:id/ws", async () => {
    const a = await user();
    const id = await group(a, []);
    expect((await upgrade(`/conversations/${id}/ws`, { query: a.token })).status).toBe(101);
  });

  it("takes Bearer on both WebSocket routes too", async () => {
    const a = await user();
    const id = await group(a, []);
    expect((await upgrade("/sync", { bearer: a.token })).status).toBe(101);
    expect((await upgrade(`/conversations/${id}/ws`, { bearer: a.token })).status).toBe(101);
  });

  it("refuses WebSocket upgrades with no, forged, expired or revoked tokens", async () => {
    const a = await user();
    const id = await group(a, []);
    const forged = await sign({ sub: a.user_id, did: a.device_id }, { secret: "another-secret-0123456789abcdef0123456789abcdef" });
    const expired = await sign({ sub: a.user_id, did: a.device_id }, { exp: Math.floor(Date.now() / 1000) - 60 });
    const login = await call("POST", "/auth/login", { body: { handle: a.handle, password: "correct horse" } });
    expect((await call("DELETE", `/devices/${login.json.device_id}`, { token: a.token })).status).toBe(204);

    for (const path of ["/sync", `/conversations/${id}/ws`]) {
      for (const auth of [{}, { query: forged }, { query: expired }, { query: login.json.token }, { bearer: login.json.token }, { query: "garbage" }]) {
        const res = await upgrade(path, auth);
        expect.soft(res.status, `${path} ${JSON.stringify(auth).slice(0, 30)}`).toBe(401);
        if (res.status === 401) expectError(res, 401, "unauthorized");
      }
    }
  });

  it("authenticates before answering a non-upgrade request on a WebSocket route", async () => {
    const a = await user();
    const id = await group(a, []);
    expectError(await call("GET", "/sync"), 401, "unauthorized");
    expectError(await call("GET", `/conversations/${id}/ws`), 401, "unauthorized");
    // Authenticated (by either means) but not an upgrade: a client error, not 401.
    expectError(await call("GET", `/sync?token=${a.token}`), 400, "invalid_request");
    expectError(await call("GET", `/conversations/${id}/ws`, { token: a.token }), 400, "invalid_request");
  });
});
