/**
 * Issue 11, finding 1: rate limits besides sends (CONTRACT.md section 17), each a token
 * bucket of its [vars] value per minute, refilled continuously. The buckets run at their
 * defaults here; every other test gets a client address of its own (helpers.call).
 */
import { describe, expect, it } from "vitest";
import { expectError, seedUsers, user } from "./api-helpers";
import { call, group, openSocket } from "./helpers";

const address = () => `192.0.2.${Math.floor(Math.random() * 250) + 1}-${crypto.randomUUID().slice(0, 8)}`;
const login = (handle: string, password: string, ip = address()) =>
  call("POST", "/auth/login", { body: { handle, password }, headers: { "cf-connecting-ip": ip } });

function expectLimited(res: { status: number; json: any; headers: Headers }) {
  expectError(res, 429, "rate_limited");
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
}

describe("failed logins (LOGIN_FAILURES_PER_MINUTE, 10)", () => {
  it("per handle: after 10 wrong passwords from anywhere even the right one waits", async () => {
    const a = await user("rl");
    for (let i = 0; i < 10; i++) expect((await login(a.handle, `wrong password ${i}`)).status).toBe(401);
    expectLimited(await login(a.handle, "wrong again"));
    expectLimited(await login(a.handle, "correct horse"));
  });

  it("per client address: 10 wrong guesses at different handles, then 429 for that address only", async () => {
    const ip = address();
    for (let i = 0; i < 10; i++) expect((await login(`nobody_${i}_${crypto.randomUUID().slice(0, 6)}`, "whatever!", ip)).status).toBe(401);
    expectLimited(await login("nobody_else", "whatever!", ip));
    expect((await login("nobody_else", "whatever!")).status).toBe(401);
  });

  it("does not count successful logins", async () => {
    const a = await user("rl");
    const ip = address();
    for (let i = 0; i < 14; i++) expect((await login(a.handle, "correct horse", ip)).status).toBe(200);
  });
});

describe("registrations per client address (REGISTRATIONS_PER_MINUTE, 30)", () => {
  it("refuses what is over 30 of 36 parallel registrations from one address", async () => {
    const ip = address();
    const results = await Promise.all(
      Array.from({ length: 36 }, (_, i) =>
        call("POST", "/auth/register", {
          body: { handle: `reg_${i}_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`, password: "correct horse" },
          headers: { "cf-connecting-ip": ip },
        }),
      ),
    );
    const created = results.filter((r) => r.status === 201).length;
    expect(created).toBeGreaterThanOrEqual(30);
    expect(created).toBeLessThanOrEqual(31);
    for (const r of results.filter((r) => r.status !== 201)) expectLimited(r);
    // Another address is not affected.
    expect((await call("POST", "/auth/register", { body: { handle: `reg_x_${Date.now().toString(36)}`, password: "correct horse" } })).status).toBe(201);
  });
});

describe("per-user limits", () => {
  it("user look-ups by handle (USER_LOOKUPS_PER_MINUTE, 60)", async () => {
    const a = await user("rl");
    const results = await Promise.all(Array.from({ length: 70 }, (_, i) => call("GET", `/users?handle=nobody_${i}`, { token: a.token })));
    const answered = results.filter((r) => r.status === 404).length;
    expect(answered).toBeGreaterThanOrEqual(60);
    expect(answered).toBeLessThanOrEqual(61);
    for (const r of results.filter((r) => r.status !== 404)) expectLimited(r);
    // Someone else's bucket is their own.
    const b = await user("rl");
    expect((await call("GET", `/users?handle=${a.handle}`, { token: b.token })).status).toBe(200);
  });

  it("conversations created (CONVERSATIONS_PER_MINUTE, 30): groups around one victim stop at 30", async () => {
    const [spammer, victim] = await Promise.all([user("rl"), user("rl")]);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        call("POST", "/conversations", { token: spammer.token, body: { type: "group", name: `spam ${i}`, members: [victim.user_id] } }),
      ),
    );
    const created = results.filter((r) => r.status === 201).length;
    expect(created).toBeGreaterThanOrEqual(30);
    expect(created).toBeLessThanOrEqual(31);
    for (const r of results.filter((r) => r.status !== 201)) expectLimited(r);
    const list = await call("GET", "/conversations?limit=200", { token: victim.token });
    expect(list.json.conversations.length).toBeLessThanOrEqual(31);
  });

  it("members added (MEMBERS_ADDED_PER_MINUTE, 600), at creation and later, one token per member", async () => {
    const a = await user("rl");
    const seeded = await seedUsers(255);
    const create = () => call("POST", "/conversations", { token: a.token, body: { type: "group", name: "big", members: seeded } });
    const first = await create();
    expect(first.status).toBe(201);
    expect((await create()).status).toBe(201);
    expectLimited(await create());
    // 90 tokens are left, refilled at 10 a second while the test runs: 250 stays over on a slow machine.
    const more = await seedUsers(250);
    expectLimited(await call("POST", `/conversations/${first.json.conversation_id}/members`, { token: a.token, body: { user_ids: more } }));
    // Two 256-member groups and 505 users: about 5 s here when the machine is busy.
  }, 30_000);
});

describe("per-socket frame limits", () => {
  it("typing frames (TYPING_FRAMES_PER_MINUTE, 60): the rest get rate_limited and are not relayed", async () => {
    const [a, b] = await Promise.all([user("rl"), user("rl")]);
    const id = await group(a, [b]);
    const sender = (await openSocket(`/conversations/${id}/ws`, a.token)).socket!;
    const watcher = (await openSocket(`/conversations/${id}/ws`, b.token)).socket!;
    const started = Date.now();
    for (let i = 0; i < 100; i++) sender.send({ type: "typing", state: i % 2 ? "stop" : "start" });
    sender.send({ type: "ping", marker: 1 });
    await sender.waitFor((f) => f.type === "pong", 30_000);
    // The bucket refills one token a second while the frames are handled.
    const refilled = Math.ceil((Date.now() - started) / 1000);
    const limited = sender.frames.filter((f) => f.type === "error" && f.code === "rate_limited");
    expect(limited.length).toBeGreaterThanOrEqual(100 - 60 - refilled);
    expect(limited[0].retry_after).toBeGreaterThanOrEqual(1);
    // Everything the sender's object relayed was sent before its pong.
    await new Promise((r) => setTimeout(r, 200));
    const relayed = watcher.frames.filter((f) => f.type === "typing" && f.user_id === a.user_id).length;
    expect(relayed).toBe(100 - limited.length);
    expect(relayed).toBeLessThanOrEqual(60 + refilled);
  }, 40_000);

  it("call frames (CALL_FRAMES_PER_MINUTE, 300)", async () => {
    const [a, b] = await Promise.all([user("rl"), user("rl")]);
    const id = await group(a, [b]);
    const sender = (await openSocket(`/conversations/${id}/ws`, a.token)).socket!;
    const started = Date.now();
    for (let i = 0; i < 320; i++) sender.send({ type: "call", call_id: "flood", action: "ice", payload: { i } });
    sender.send({ type: "ping", marker: 1 });
    await sender.waitFor((f) => f.type === "pong", 30_000);
    // Five tokens a second come back while the frames are handled.
    const refilled = 5 * Math.ceil((Date.now() - started) / 1000);
    const limited = sender.frames.filter((f) => f.type === "error" && f.code === "rate_limited");
    expect(limited.length).toBeGreaterThanOrEqual(320 - 300 - refilled);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited.length).toBeLessThanOrEqual(20);
  }, 40_000);
});
