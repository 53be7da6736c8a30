/** Accounts, devices, user look-ups and authentication (CONTRACT.md sections 1, 3, 12) against the real server. */
import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { PASSWORD, closeAll, uniqueHandle, type Session } from "./client";
import { localTokenSecret } from "./server";
import { useServer } from "./setup";

const ctx = useServer();

const expectError = (res: { status: number; json: any }, status: number, code: string) => {
  expect(res.status, JSON.stringify(res.json)).toBe(status);
  expect(res.json).toMatchObject({ error: { code, message: expect.any(String) } });
};

async function signToken(secret: string, sub: string, did: string, exp: number): Promise<string> {
  return new SignJWT({ did })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt(Math.min(exp - 60, Math.floor(Date.now() / 1000)))
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
}

describe("health and errors", () => {
  it("GET /v1/health answers 200 {ok:true} without a token", async () => {
    const res = await ctx.api.get("/health");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ok: true });
  });

  it("an unknown route is 404 not_found in the error shape", async () => {
    expectError(await ctx.api.get("/no/such/route"), 404, "not_found");
  });
});

describe("register", () => {
  it("creates a user and a first device: 201 {user_id, device_id, token}", async () => {
    const handle = uniqueHandle("reg");
    const res = await ctx.api.post("/auth/register", undefined, { handle, password: PASSWORD, display_name: "Reg Ister" });
    expect(res.status).toBe(201);
    expect(res.json).toEqual({ user_id: expect.any(String), device_id: expect.any(String), token: expect.any(String) });
    const me = await ctx.api.get("/me", res.json.token);
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ user_id: res.json.user_id, handle, display_name: "Reg Ister" });
    expect(me.json.devices).toEqual([{ device_id: res.json.device_id, name: null, created_at: expect.any(Number) }]);
  });

  it("a taken handle is 409 conflict", async () => {
    const handle = uniqueHandle("dup");
    expect((await ctx.api.post("/auth/register", undefined, { handle, password: PASSWORD })).status).toBe(201);
    expectError(await ctx.api.post("/auth/register", undefined, { handle, password: "another password" }), 409, "conflict");
  });

  it("concurrent registrations of one handle: exactly one wins", async () => {
    const handle = uniqueHandle("race");
    const results = await Promise.all(
      Array.from({ length: 4 }, () => ctx.api.post("/auth/register", undefined, { handle, password: PASSWORD })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
  });

  it.each([
    ["too short", "ab"],
    ["too long", "a".repeat(33)],
    ["upper case", "Alice_1"],
    ["a dash", "al-ice"],
    ["a space", "al ice"],
    ["not a string", 12345],
  ])("a bad handle (%s) is 400 invalid_request", async (_, handle) => {
    expectError(await ctx.api.post("/auth/register", undefined, { handle, password: PASSWORD }), 400, "invalid_request");
  });

  it("handles of exactly 3 and 32 characters are fine", async () => {
    const base = uniqueHandle("b").replace(/_/g, "");
    const h32 = `${base}${"x".repeat(32)}`.slice(0, 32);
    expect((await ctx.api.post("/auth/register", undefined, { handle: h32, password: PASSWORD })).status).toBe(201);
    // 3 characters: try a few in case an earlier run of the suite on this state took one (state is per suite, so rarely).
    const h3 = `${"abcdefghijklmnopqrstuvwxyz"[Math.floor(Math.random() * 26)]}${Math.floor(Math.random() * 100)
      .toString()
      .padStart(2, "0")}`;
    const res = await ctx.api.post("/auth/register", undefined, { handle: h3, password: PASSWORD });
    expect([201, 409]).toContain(res.status);
  });

  it("a password under 8 characters is 400", async () => {
    expectError(await ctx.api.post("/auth/register", undefined, { handle: uniqueHandle(), password: "1234567" }), 400, "invalid_request");
    expect((await ctx.api.post("/auth/register", undefined, { handle: uniqueHandle(), password: "12345678" })).status).toBe(201);
  });

  it("missing fields and malformed JSON are 400", async () => {
    expectError(await ctx.api.post("/auth/register", undefined, { handle: uniqueHandle() }), 400, "invalid_request");
    expectError(await ctx.api.call("POST", "/auth/register", { raw: '{"handle": "abc", "password": ' }), 400, "invalid_request");
    expectError(await ctx.api.call("POST", "/auth/register", { raw: "" }), 400, "invalid_request");
    expectError(await ctx.api.call("POST", "/auth/register", { raw: "[]" }), 400, "invalid_request");
  });
});

describe("login", () => {
  it("creates a new device each time and returns 200 {user_id, device_id, token}", async () => {
    const user = await ctx.api.register("login");
    const res = await ctx.api.post("/auth/login", undefined, { handle: user.handle, password: PASSWORD, device_name: "laptop" });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ user_id: user.user_id, device_id: expect.any(String), token: expect.any(String) });
    expect(res.json.device_id).not.toBe(user.device_id);
    const me = await ctx.api.get("/me", res.json.token);
    expect(me.status).toBe(200);
    const devices = me.json.devices as any[];
    expect(devices.map((d) => d.device_id).sort()).toEqual([user.device_id, res.json.device_id].sort());
    expect(devices.find((d) => d.device_id === res.json.device_id)).toMatchObject({ name: "laptop", created_at: expect.any(Number) });
    // the first device still works alongside the second
    expect((await ctx.api.get("/me", user.token)).status).toBe(200);
  });

  it("a wrong password and an unknown handle get the same 401 answer", async () => {
    const user = await ctx.api.register("wrongpw");
    const wrong = await ctx.api.post("/auth/login", undefined, { handle: user.handle, password: "not the password" });
    const unknown = await ctx.api.post("/auth/login", undefined, { handle: uniqueHandle("nobody"), password: PASSWORD });
    expectError(wrong, 401, "unauthorized");
    expectError(unknown, 401, "unauthorized");
    expect(wrong.json).toEqual(unknown.json);
  });

  it("malformed login bodies are 400", async () => {
    expectError(await ctx.api.call("POST", "/auth/login", { raw: "{not json" }), 400, "invalid_request");
    expectError(await ctx.api.post("/auth/login", undefined, { handle: "abc" }), 400, "invalid_request");
  });
});

describe("users", () => {
  let alice: Session;
  let bob: Session;
  beforeAll(async () => {
    alice = await ctx.api.register("alice", { display_name: "Alice A." });
    bob = await ctx.api.register("bob");
  });

  it("GET /v1/users/{id} answers {user_id, handle, display_name}", async () => {
    const res = await ctx.api.get(`/users/${alice.user_id}`, bob.token);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ user_id: alice.user_id, handle: alice.handle, display_name: "Alice A." });
    const b = await ctx.api.get(`/users/${bob.user_id}`, alice.token);
    expect(b.json).toEqual({ user_id: bob.user_id, handle: bob.handle, display_name: null });
  });

  it("GET /v1/users?handle= answers the same, or 404", async () => {
    const res = await ctx.api.get(`/users?handle=${alice.handle}`, bob.token);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ user_id: alice.user_id, handle: alice.handle, display_name: "Alice A." });
    expectError(await ctx.api.get(`/users?handle=${uniqueHandle("ghost")}`, bob.token), 404, "not_found");
  });

  it("an unknown user id is 404", async () => {
    expectError(await ctx.api.get(`/users/u_doesnotexist`, bob.token), 404, "not_found");
  });

  it("look-ups need a token", async () => {
    expectError(await ctx.api.get(`/users/${alice.user_id}`), 401, "unauthorized");
    expectError(await ctx.api.get(`/users?handle=${alice.handle}`), 401, "unauthorized");
  });
});

describe("tokens", () => {
  let user: Session;
  beforeAll(async () => {
    user = await ctx.api.register("tok");
  });

  it("no token, a garbage token and a malformed header are 401", async () => {
    expectError(await ctx.api.get("/me"), 401, "unauthorized");
    expectError(await ctx.api.get("/me", "not-a-jwt"), 401, "unauthorized");
    expectError(await ctx.api.call("GET", "/me", { headers: { authorization: `Basic ${user.token}` } }), 401, "unauthorized");
    expectError(await ctx.api.get("/conversations"), 401, "unauthorized");
  });

  it("a token signed with another secret is 401", async () => {
    const forged = await signToken("not-the-server-secret-0123456789abcdef", user.user_id, user.device_id, Math.floor(Date.now() / 1000) + 3600);
    expectError(await ctx.api.get("/me", forged), 401, "unauthorized");
  });

  it("a tampered token (payload changed, signature kept) is 401", async () => {
    const other = await ctx.api.register("tok2");
    const [h, , s] = user.token.split(".");
    const [, p2] = other.token.split(".");
    expectError(await ctx.api.get("/me", `${h}.${p2}.${s}`), 401, "unauthorized");
  });

  it("a token signed with the server's own secret works until it expires; an expired one is 401", async () => {
    const secret = localTokenSecret();
    const now = Math.floor(Date.now() / 1000);
    // Control: the same secret, not expired, is accepted, so the 401 below is about expiry alone.
    const valid = await signToken(secret, user.user_id, user.device_id, now + 600);
    expect((await ctx.api.get("/me", valid)).status).toBe(200);
    const expired = await signToken(secret, user.user_id, user.device_id, now - 60);
    expectError(await ctx.api.get("/me", expired), 401, "unauthorized");
  });

  it("a token naming a device that does not exist is 401", async () => {
    const secret = localTokenSecret();
    const bogus = await signToken(secret, user.user_id, "d_nosuchdevice", Math.floor(Date.now() / 1000) + 600);
    expectError(await ctx.api.get("/me", bogus), 401, "unauthorized");
  });

  it("an alg=none token is 401", async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const none = `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: user.user_id, did: user.device_id, exp: Math.floor(Date.now() / 1000) + 600 })}.`;
    expectError(await ctx.api.get("/me", none), 401, "unauthorized");
  });

  it("a socket whose token expires is closed with 4401 at its next frame", async () => {
    const secret = localTokenSecret();
    const peer = await ctx.api.register("tokpeer");
    const conv = await ctx.api.group(user, [peer], "expiring");
    const short = await signToken(secret, user.user_id, user.device_id, Math.floor(Date.now() / 1000) + 3);
    const ws = await ctx.api.openSocket(`/conversations/${conv}/ws`, short);
    expect(ws.status).toBe(101);
    const sync = await ctx.api.openSocket("/sync", short);
    expect(sync.status).toBe(101);
    await Promise.all([ws.roundTrip(), sync.roundTrip()]);
    // wait out the expiry (whole seconds, plus a margin), then send frames that reach the objects
    await new Promise((r) => setTimeout(r, 4_200));
    ws.send({ type: "typing", state: "start" });
    sync.send({ type: "hello" });
    expect((await ws.waitClose(5_000)).code).toBe(4401);
    expect((await sync.waitClose(5_000)).code).toBe(4401);
  });
});

describe("devices", () => {
  it("DELETE /v1/devices/{id} revokes a device: 204, its token is refused on the next request", async () => {
    const first = await ctx.api.register("rev");
    const second = await ctx.api.login(first, "phone");
    const res = await ctx.api.del(`/devices/${second.device_id}`, first.token);
    expect(res.status).toBe(204);
    expectError(await ctx.api.get("/me", second.token), 401, "unauthorized");
    expectError(await ctx.api.get("/conversations", second.token), 401, "unauthorized");
    const me = await ctx.api.get("/me", first.token);
    expect(me.status).toBe(200);
    expect(me.json.devices.map((d: any) => d.device_id)).toEqual([first.device_id]);
    // revoking again: it is no longer one of the user's live devices
    expect((await ctx.api.del(`/devices/${second.device_id}`, first.token)).status).toBeGreaterThanOrEqual(400);
  });

  it("a device can revoke itself", async () => {
    const u = await ctx.api.register("self");
    expect((await ctx.api.del(`/devices/${u.device_id}`, u.token)).status).toBe(204);
    expectError(await ctx.api.get("/me", u.token), 401, "unauthorized");
    // login still works and makes a new device
    const again = await ctx.api.login(u);
    expect((await ctx.api.get("/me", again.token)).status).toBe(200);
  });

  it("another user's device cannot be revoked", async () => {
    const a = await ctx.api.register("own");
    const b = await ctx.api.register("other");
    const res = await ctx.api.del(`/devices/${b.device_id}`, a.token);
    expect([403, 404]).toContain(res.status);
    expect(res.json?.error?.code).toMatch(/^(forbidden|not_found)$/);
    expect((await ctx.api.get("/me", b.token)).status).toBe(200);
  });

  it("revocation closes the device's open sockets with 4401, the device socket and conversation sockets alike", async () => {
    const owner = await ctx.api.register("sockrev");
    const doomed = await ctx.api.login(owner, "doomed");
    const peer = await ctx.api.register("sockpeer");
    const conv = await ctx.api.group(owner, [peer], "revocation");
    const sync = await ctx.api.sync(doomed);
    const convWs = await ctx.api.convSocket(doomed, conv);
    const keepSync = await ctx.api.sync(owner);
    const keepConv = await ctx.api.convSocket(owner, conv);
    await Promise.all([sync.roundTrip(), convWs.roundTrip(), keepSync.roundTrip(), keepConv.roundTrip()]);

    expect((await ctx.api.del(`/devices/${doomed.device_id}`, owner.token)).status).toBe(204);
    const [a, b] = await Promise.all([sync.waitClose(5_000), convWs.waitClose(5_000)]);
    expect(a.code).toBe(4401);
    expect(b.code).toBe(4401);

    // the user's other device keeps both its sockets
    await keepSync.roundTrip();
    await keepConv.roundTrip();
    expect(keepSync.isOpen && keepConv.isOpen).toBe(true);

    // and the revoked token cannot open new ones: 401 before the upgrade
    const again = await ctx.api.openSocket("/sync", doomed.token);
    expect(again.status).toBe(401);
    const againConv = await ctx.api.openSocket(`/conversations/${conv}/ws`, doomed.token);
    expect(againConv.status).toBe(401);
    await closeAll([keepSync, keepConv]);
  });
});
