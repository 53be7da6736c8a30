/**
 * CONTRACT.md section 2: every limit is a default that `[vars]` can change. The server here
 * runs with small limits (`wrangler dev --var`, as `[vars]` would set them), which also makes
 * the group-size race and token expiry cheap to exercise.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, cmid, sleep } from "./client";
import { TestServer } from "./server";

const LIMITS = {
  MAX_CONTENT_CHARS: 10,
  MAX_BODY_BYTES: 2048,
  MAX_GROUP_MEMBERS: 4,
  SEND_RATE_PER_MINUTE: 6,
  TOKEN_TTL_SECONDS: 8,
};

let server: TestServer;
let api: Api;

beforeAll(async () => {
  server = await TestServer.start({ args: Object.entries(LIMITS).flatMap(([k, v]) => ["--var", `${k}:${v}`]) });
  api = new Api(server.baseUrl);
});

afterAll(async () => {
  await server?.dispose();
});

const expectError = (res: { status: number; json: any }, status: number, code: string) => {
  expect(res.status, JSON.stringify(res.json)?.slice(0, 300)).toBe(status);
  expect(res.json).toMatchObject({ error: { code, message: expect.any(String) } });
};

describe("configured limits", () => {
  it("content and body limits follow [vars]", async () => {
    const a = await api.register("cl");
    const conv = await api.group(a, [], "content");
    expect((await api.send(a, conv, cmid(), "x".repeat(10))).status).toBe(201);
    expectError(await api.send(a, conv, cmid(), "x".repeat(11)), 413, "too_large");
    const raw = JSON.stringify({ client_message_id: cmid(), kind: "text", content: "ok", pad: "p".repeat(3000) });
    expectError(await api.call("POST", `/conversations/${conv}/messages`, { token: a.token, raw }), 413, "too_large");
    expect(await api.allMessages(a, conv)).toHaveLength(1);
  });

  it("the group limit follows [vars]; concurrent additions cannot exceed it", async () => {
    const users = await Promise.all(Array.from({ length: 7 }, (_, i) => api.register(`gl${i}`)));
    const admin = users[0]!;
    const others = users.slice(1);
    expectError(await api.post("/conversations", admin.token, { type: "group", name: "too big", members: others.slice(0, 4).map((u) => u.user_id) }), 422, "limit_exceeded");
    const full = await api.post("/conversations", admin.token, { type: "group", name: "full", members: others.slice(0, 3).map((u) => u.user_id) });
    expect(full.status).toBe(201);
    expectError(await api.post(`/conversations/${full.json.conversation_id}/members`, admin.token, { user_ids: [others[3]!.user_id] }), 422, "limit_exceeded");

    // two members, then three concurrent additions of one each: only two fit
    const conv = await api.group(admin, [others[0]!], "race");
    const adds = await Promise.all(
      others.slice(1, 4).map((u) => api.post(`/conversations/${conv}/members`, admin.token, { user_ids: [u.user_id] })),
    );
    expect(adds.map((r) => r.status).sort()).toEqual([200, 200, 422]);
    const after = await api.get(`/conversations/${conv}`, admin.token);
    expect(after.json.members).toHaveLength(4);

    // two concurrent additions of two each onto two members: only one fits
    const conv2 = await api.group(admin, [others[0]!], "race2");
    const adds2 = await Promise.all([
      api.post(`/conversations/${conv2}/members`, admin.token, { user_ids: [others[1]!.user_id, others[2]!.user_id] }),
      api.post(`/conversations/${conv2}/members`, admin.token, { user_ids: [others[3]!.user_id, others[4]!.user_id] }),
    ]);
    expect(adds2.map((r) => r.status).sort()).toEqual([200, 422]);
    expect((await api.get(`/conversations/${conv2}`, admin.token)).json.members).toHaveLength(4);
  });

  it("the send rate follows [vars]: a bucket of N, then 429 with retry-after", async () => {
    const a = await api.register("rl");
    const conv = await api.group(a, [], "rate");
    // all at once, so that the bucket (one token per 10 s) has no time to refill
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => api.send(a, conv, cmid(`r${i}`), `m${i}`)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 201, 201, 201, 201, 201, 429, 429]);
    const limited = results.find((r) => r.status === 429)!;
    expect(limited.json).toMatchObject({ error: { code: "rate_limited" } });
    // one token per 10 s at 6 a minute
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(11);
    expect(await api.allMessages(a, conv)).toHaveLength(6);
  });

  it("tokens live TOKEN_TTL_SECONDS, then every request is 401", async () => {
    const u = await api.register("ttl");
    const session = await api.login(u);
    const issuedAt = Date.now();
    expect((await api.get("/me", session.token)).status).toBe(200);
    const claims = JSON.parse(Buffer.from(session.token.split(".")[1]!, "base64url").toString("utf8"));
    expect(claims.exp - (claims.iat ?? Math.floor(issuedAt / 1000))).toBeLessThanOrEqual(LIMITS.TOKEN_TTL_SECONDS + 1);
    await sleep(Math.max(0, claims.exp * 1000 - Date.now()) + 1_200);
    expectError(await api.get("/me", session.token), 401, "unauthorized");
    expect((await api.openSocket("/sync", session.token)).status).toBe(401);
  }, 30_000);
});
