/** Accounts, devices and user look-ups: CONTRACT.md sections 1, 3 and 12. */
import { describe, expect, it } from "vitest";
import { expectError, freshHandle, user } from "./api-helpers";
import { call } from "./helpers";

const PASSWORD = "correct horse";

const registerRaw = (body: unknown) => call("POST", "/auth/register", { body });
const login = (handle: string, password = PASSWORD, extra: Record<string, unknown> = {}) =>
  call("POST", "/auth/login", { body: { handle, password, ...extra } });

describe("POST /v1/auth/register", () => {
  it("answers 201 with user_id, device_id and a working token", async () => {
    const handle = freshHandle();
    const res = await registerRaw({ handle, password: PASSWORD, display_name: "Ada" });
    expect(res.status).toBe(201);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(Object.keys(res.json).sort()).toEqual(["device_id", "token", "user_id"]);
    for (const k of ["user_id", "device_id", "token"]) {
      expect(typeof res.json[k]).toBe("string");
      expect(res.json[k].length).toBeGreaterThan(0);
    }
    const me = await call("GET", "/me", { token: res.json.token });
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ user_id: res.json.user_id, handle, display_name: "Ada" });
    expect(me.json.devices.map((d: any) => d.device_id)).toEqual([res.json.device_id]);
  });

  it("gives each account its own ids", async () => {
    const a = await user();
    const b = await user();
    expect(a.user_id).not.toBe(b.user_id);
    expect(a.device_id).not.toBe(b.device_id);
  });

  it("answers display_name null when none is given", async () => {
    const a = await user();
    const me = await call("GET", "/me", { token: a.token });
    expect(me.json.display_name).toBeNull();
  });

  it("answers 409 conflict for a taken handle, whatever the password", async () => {
    const a = await user();
    expectError(await registerRaw({ handle: a.handle, password: PASSWORD }), 409, "conflict");
    expectError(await registerRaw({ handle: a.handle, password: "another password" }), 409, "conflict");
    // The original account is untouched.
    expect((await login(a.handle)).status).toBe(200);
    expectError(await login(a.handle, "another password"), 401, "unauthorized");
  });

  it("lets only one of several concurrent registrations of a handle through", async () => {
    const handle = freshHandle("race");
    const results = await Promise.all(Array.from({ length: 5 }, () => registerRaw({ handle, password: PASSWORD })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409]);
  });

  it("accepts handles of exactly 3 and 32 characters of [a-z0-9_]", async () => {
    // Few 3-character handles exist; try random ones until one is free.
    let r3 = { status: 0 } as Awaited<ReturnType<typeof registerRaw>>;
    for (let i = 0; i < 10 && r3.status !== 201; i++) {
      const short = `${freshHandle("z").slice(-2)}_`;
      expect(short).toHaveLength(3);
      r3 = await registerRaw({ handle: short, password: PASSWORD });
      expect([201, 409]).toContain(r3.status);
    }
    expect(r3.status).toBe(201);
    const long = `${freshHandle("x")}${"_0123456789abcdefghijklmnopqrstuvwxyz"}`.slice(0, 32);
    expect(long).toHaveLength(32);
    expect((await registerRaw({ handle: long, password: PASSWORD })).status).toBe(201);
  });

  it("answers 400 invalid_request for handles of the wrong length or characters", async () => {
    const base = freshHandle("bad").slice(0, 20);
    const bad = [
      "ab",
      "",
      `${base}${"a".repeat(13)}`, // 33
      `${base}-x`,
      `${base}.x`,
      `${base} x`,
      `${base.toUpperCase()}`,
      `Ab${base}`,
      `${base}é`,
      `@${base}`,
    ];
    for (const handle of bad) {
      const res = await registerRaw({ handle, password: PASSWORD });
      expect.soft(res.status, handle).toBe(400);
      if (res.status === 400) expectError(res, 400, "invalid_request");
    }
  });

  it("answers 400 for a password under 8 characters, and accepts exactly 8", async () => {
    expectError(await registerRaw({ handle: freshHandle(), password: "1234567" }), 400, "invalid_request");
    expectError(await registerRaw({ handle: freshHandle(), password: "" }), 400, "invalid_request");
    const handle = freshHandle();
    expect((await registerRaw({ handle, password: "12345678" })).status).toBe(201);
    expect((await login(handle, "12345678")).status).toBe(200);
  });

  it("answers 400 for missing fields", async () => {
    expectError(await registerRaw({ password: PASSWORD }), 400, "invalid_request");
    expectError(await registerRaw({ handle: freshHandle() }), 400, "invalid_request");
    expectError(await registerRaw({}), 400, "invalid_request");
  });

  it("answers 400 for ill-typed fields", async () => {
    const cases = [
      { handle: 12345, password: PASSWORD },
      { handle: freshHandle(), password: 12345678 },
      { handle: freshHandle(), password: PASSWORD, display_name: 7 },
      { handle: [freshHandle()], password: PASSWORD },
      { handle: null, password: PASSWORD },
      { handle: freshHandle(), password: { p: PASSWORD } },
    ];
    for (const body of cases) {
      const res = await registerRaw(body);
      expect.soft(res.status, JSON.stringify(body)).toBe(400);
      if (res.status === 400) expectError(res, 400, "invalid_request");
    }
  });

  it("answers 400 for a body that is not a JSON object", async () => {
    for (const raw of ["{", "not json", "", "null", "[]", '"handle"', "42"]) {
      const res = await call("POST", "/auth/register", { raw });
      expect.soft(res.status, JSON.stringify(raw)).toBe(400);
      if (res.status === 400) expectError(res, 400, "invalid_request");
    }
  });

  it("answers 413 for a body over 256 KiB", async () => {
    const res = await registerRaw({ handle: freshHandle(), password: PASSWORD, pad: "x".repeat(300 * 1024) });
    expectError(res, 413, "too_large");
  });
});

describe("POST /v1/auth/login", () => {
  it("answers 200 with a new device each time, for the same user", async () => {
    const a = await user();
    const one = await login(a.handle);
    const two = await login(a.handle, PASSWORD, { device_name: "laptop" });
    for (const res of [one, two]) {
      expect(res.status).toBe(200);
      expect(Object.keys(res.json).sort()).toEqual(["device_id", "token", "user_id"]);
      expect(res.json.user_id).toBe(a.user_id);
    }
    const ids = new Set([a.device_id, one.json.device_id, two.json.device_id]);
    expect(ids.size).toBe(3);
    // Every device's token works at once.
    for (const token of [a.token, one.json.token, two.json.token]) {
      expect((await call("GET", "/me", { token })).json.user_id).toBe(a.user_id);
    }
  });

  it("answers 401 with the same body for an unknown handle and a wrong password", async () => {
    const a = await user();
    const wrongPassword = await login(a.handle, "wrong password");
    const unknownHandle = await login(freshHandle("nobody"), PASSWORD);
    expectError(wrongPassword, 401, "unauthorized");
    expectError(unknownHandle, 401, "unauthorized");
    expect(unknownHandle.json).toEqual(wrongPassword.json);
    // Nor does a case variant of the handle or password get in.
    expectError(await login(a.handle.toUpperCase()), 401, "unauthorized");
    expectError(await login(a.handle, PASSWORD.toUpperCase()), 401, "unauthorized");
  });

  it("creates no device on a failed login", async () => {
    const a = await user();
    await login(a.handle, "wrong password");
    const me = await call("GET", "/me", { token: a.token });
    expect(me.json.devices).toHaveLength(1);
  });

  it("answers 400 for missing or ill-typed fields and malformed JSON", async () => {
    const a = await user();
    for (const body of [{ handle: a.handle }, { password: PASSWORD }, { handle: 1, password: PASSWORD }, { handle: a.handle, password: 12345678 }]) {
      const res = await call("POST", "/auth/login", { body });
      expect.soft(res.status, JSON.stringify(body)).toBe(400);
      if (res.status === 400) expectError(res, 400, "invalid_request");
    }
    expectError(await call("POST", "/auth/login", { raw: "{nope" }), 400, "invalid_request");
  });
});

describe("GET /v1/me", () => {
  it("lists the user's live devices with their names and creation times", async () => {
    const a = await user();
    const before = Date.now();
    const phone = await login(a.handle, PASSWORD, { device_name: "phone" });
    const me = await call("GET", "/me", { token: phone.json.token });
    expect(me.status).toBe(200);
    expect(Object.keys(me.json).sort()).toEqual(["devices", "display_name", "handle", "user_id"]);
    expect(me.json).toMatchObject({ user_id: a.user_id, handle: a.handle });
    expect(me.json.devices).toHaveLength(2);
    const byId = Object.fromEntries(me.json.devices.map((d: any) => [d.device_id, d]));
    expect(Object.keys(byId).sort()).toEqual([a.device_id, phone.json.device_id].sort());
    expect(byId[phone.json.device_id].name).toBe("phone");
    expect(byId[a.device_id].name).toBeNull();
    for (const d of me.json.devices) {
      expect(Object.keys(d).sort()).toEqual(["created_at", "device_id", "name"]);
      expect(typeof d.created_at).toBe("number");
    }
    expect(byId[phone.json.device_id].created_at).toBeGreaterThanOrEqual(before);
    expect(byId[phone.json.device_id].created_at).toBeLessThanOrEqual(Date.now());
  });

  it("drops a deleted device from the list", async () => {
    const a = await user();
    const other = await login(a.handle);
    expect((await call("DELETE", `/devices/${other.json.device_id}`, { token: a.token })).status).toBe(204);
    const me = await call("GET", "/me", { token: a.token });
    expect(me.json.devices.map((d: any) => d.device_id)).toEqual([a.device_id]);
  });

  it("shows only the caller's own devices", async () => {
    const a = await user();
    const b = await user();
    const me = await call("GET", "/me", { token: b.token });
    expect(me.json.devices.map((d: any) => d.device_id)).toEqual([b.device_id]);
    expect(me.json.devices.map((d: any) => d.device_id)).not.toContain(a.device_id);
  });
});

describe("DELETE /v1/devices/:id", () => {
  it("answers 204 with no body and revokes the device", async () => {
    const a = await user();
    const other = await login(a.handle);
    const res = await call("DELETE", `/devices/${other.json.device_id}`, { token: a.token });
    expect(res.status).toBe(204);
    expect(res.json).toBeNull();
    expectError(await call("GET", "/me", { token: other.json.token }), 401, "unauthorized");
    // A fresh login still works after a revocation.
    expect((await login(a.handle)).status).toBe(200);
  });

  it("answers 404 for someone else's device and leaves it live", async () => {
    const a = await user();
    const b = await user();
    expectError(await call("DELETE", `/devices/${b.device_id}`, { token: a.token }), 404, "not_found");
    expect((await call("GET", "/me", { token: b.token })).status).toBe(200);
  });

  it("answers 404 for an already-deleted device and for an unknown one", async () => {
    const a = await user();
    const other = await login(a.handle);
    expect((await call("DELETE", `/devices/${other.json.device_id}`, { token: a.token })).status).toBe(204);
    expectError(await call("DELETE", `/devices/${other.json.device_id}`, { token: a.token }), 404, "not_found");
    expectError(await call("DELETE", "/devices/d_nosuchdevice", { token: a.token }), 404, "not_found");
  });
});

describe("GET /v1/users", () => {
  it("answers a user by id with exactly user_id, handle and display_name", async () => {
    const a = await user();
    const handle = freshHandle();
    const reg = await registerRaw({ handle, password: PASSWORD, display_name: "Grace" });
    const res = await call("GET", `/users/${reg.json.user_id}`, { token: a.token });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ user_id: reg.json.user_id, handle, display_name: "Grace" });
  });

  it("answers a user by handle, the same as by id", async () => {
    const a = await user();
    const b = await user();
    const byHandle = await call("GET", `/users?handle=${b.handle}`, { token: a.token });
    const byId = await call("GET", `/users/${b.user_id}`, { token: a.token });
    expect(byHandle.status).toBe(200);
    expect(byHandle.json).toEqual({ user_id: b.user_id, handle: b.handle, display_name: null });
    expect(byHandle.json).toEqual(byId.json);
  });

  it("answers 404 not_found for an unknown id or handle", async () => {
    const a = await user();
    expectError(await call("GET", "/users/u_nosuchuser", { token: a.token }), 404, "not_found");
    expectError(await call("GET", `/users?handle=${freshHandle("nobody")}`, { token: a.token }), 404, "not_found");
    expectError(await call("GET", `/users?handle=${a.handle.toUpperCase()}`, { token: a.token }), 404, "not_found");
  });

  it("answers 400 invalid_request without a handle", async () => {
    const a = await user();
    expectError(await call("GET", "/users", { token: a.token }), 400, "invalid_request");
    expectError(await call("GET", "/users?handle=", { token: a.token }), 400, "invalid_request");
    expectError(await call("GET", "/users?name=x", { token: a.token }), 400, "invalid_request");
  });
});

describe("errors and routes", () => {
  it("answers 404 not_found for unknown routes", async () => {
    const a = await user();
    for (const [method, path] of [
      ["GET", "/nope"],
      ["GET", "/v2/health"],
      ["POST", "/health"],
      ["GET", "/auth/register"],
      ["GET", "/devices/x/y"],
      ["PATCH", "/me"],
      ["GET", "/conversations/g_aaaaaaaaaaaaaaaaaaaaaaaaaa/nope"],
      ["PUT", "/conversations"],
    ] as const) {
      const res = await call(method, path, { token: a.token });
      expect.soft(res.status, `${method} ${path}`).toBe(404);
      if (res.status === 404) expectError(res, 404, "not_found");
    }
  });

  it("answers 404 in the contract's shape outside /v1 as well", async () => {
    const { exports } = await import("cloudflare:workers");
    const res = await exports.default.fetch(new Request("http://chat.test/"));
    expect(res.status).toBe(404);
    expect((await res.json() as any).error.code).toBe("not_found");
  });

  it("answers /v1/health 200 {ok:true} without authentication", async () => {
    const res = await call("GET", "/health");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ok: true });
  });
});
