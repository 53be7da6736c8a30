/**
 * Web Push end to end: the real server, a push service on loopback that verifies the VAPID
 * JWT and decrypts each push with the subscription's private key (push-service.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, closeAll, sleep, type Session } from "./client";
import { startPushService, type PushService } from "./push-service";
import { TestServer } from "./server";

let server: TestServer;
let api: Api;
let push: PushService;

beforeAll(async () => {
  [server, push] = await Promise.all([TestServer.start(), startPushService()]);
  api = new Api(server.baseUrl);
});
afterAll(async () => {
  await Promise.all([server?.stop(), push?.close()]);
});

async function subscribe(s: Session, path: string, behaviour?: Parameters<PushService["newSubscription"]>[1]) {
  const res = await api.post("/push/subscriptions", s.token, push.newSubscription(path, behaviour));
  expect(res.status).toBe(201);
}

describe("web push", () => {
  it("pushes a verified, encrypted notification naming conversation and seq, never the content", async () => {
    const alice = await api.register("pa");
    const bob = await api.register("pb");
    const id = await api.direct(bob, alice);
    await subscribe(alice, "/alice-phone");

    await api.sendOk(bob, id, "secret-1", "the secret content");
    const got = await push.waitFor("/alice-phone", 15_000);
    expect(got.payload).toEqual({ type: "message", conversation_id: id, seq: 1 });
    expect(got.text).not.toContain("secret");
    expect(got.headers["content-encoding"]).toBe("aes128gcm");
    expect(got.claims.aud).toBe(push.origin);
    expect(got.claims.sub).toMatch(/^(mailto:|https:)/);
    const now = Date.now() / 1000;
    expect(got.claims.exp).toBeGreaterThan(now);
    expect(got.claims.exp).toBeLessThanOrEqual(now + 24 * 3600);
    const key = await api.get("/push/vapid-public-key");
    expect(got.vapidKey).toBe(key.json.key);
    expect(Buffer.from(key.json.key, "base64url")).toHaveLength(65);

    // The sender's own messages never push to the sender.
    await subscribe(bob, "/bob-phone");
    await api.sendOk(bob, id, "secret-2");
    await push.waitForCount("/alice-phone", 2, 15_000);
    expect(push.receivedFor("/bob-phone")).toHaveLength(0);
  });

  it("skips devices with an open device socket", async () => {
    const alice = await api.register("pc");
    const bob = await api.register("pd");
    const id = await api.direct(bob, alice);
    await subscribe(alice, "/online-phone");
    const device = await api.sync(alice);
    await api.sendOk(bob, id);
    await device.waitFor((f) => f.type === "message");
    await sleep(2_500);
    expect(push.receivedFor("/online-phone")).toHaveLength(0);
    await closeAll([device]);
    await api.sendOk(bob, id);
    const got = await push.waitFor("/online-phone", 15_000);
    expect(got.payload).toMatchObject({ seq: 2 });
  });

  it("deletes a subscription whose endpoint answers 410, and retries one that fails", async () => {
    const alice = await api.register("pe");
    const bob = await api.register("pf");
    const id = await api.direct(bob, alice);
    const aliceTablet = await api.login(alice, "tablet");
    await subscribe(alice, "/gone-phone", "gone");
    await subscribe(aliceTablet, "/flaky-tablet", { fail: 2, status: 503 });

    await api.sendOk(bob, id);
    await push.waitFor((p) => p.path === "/gone-phone" && p.status === 410, 15_000);
    const tries = await push.waitForCount((p) => p.path === "/flaky-tablet", 3, 30_000);
    expect(tries.map((p) => p.status)).toEqual([503, 503, 201]);
    expect(new Set(tries.map((p) => JSON.stringify(p.payload))).size).toBe(1);

    // The 410 subscription is gone: the next message reaches the tablet only.
    await sleep(1_000);
    await api.sendOk(bob, id);
    await push.waitFor((p) => p.path === "/flaky-tablet" && (p.payload as { seq: number }).seq === 2, 15_000);
    await sleep(1_500);
    expect(push.receivedFor("/gone-phone")).toHaveLength(1);
  }, 60_000);

  it("validates subscriptions and stops pushing after DELETE", async () => {
    const alice = await api.register("pg");
    const bob = await api.register("ph");
    const id = await api.direct(bob, alice);
    const bad = [
      { endpoint: "http://push.example.com/x", keys: { p256dh: "BAAA", auth: "AAAA" } },
      { endpoint: "not a url", keys: { p256dh: "x", auth: "y" } },
      { endpoint: `${push.origin}/bad-keys`, keys: { p256dh: "AAAA", auth: "AAAA" } },
      { endpoint: `${push.origin}/no-keys` },
    ];
    for (const body of bad) {
      const res = await api.post("/push/subscriptions", alice.token, body);
      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe("invalid_request");
    }
    expect((await api.post("/push/subscriptions", undefined, push.newSubscription("/anon"))).status).toBe(401);

    await subscribe(alice, "/deleted");
    expect((await api.del("/push/subscriptions", alice.token)).status).toBe(204);
    await api.sendOk(bob, id);
    await sleep(2_500);
    expect(push.receivedFor("/deleted")).toHaveLength(0);
  });
});
