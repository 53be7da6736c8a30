/**
 * Issue 11, finding 3: push endpoints only at the push services' hosts (PUSH_HOSTS), never
 * an IP literal or localhost; 4xx answers other than 404/410/429 are not retried; at most
 * MAX_DEVICES_PER_USER devices; at most MAX_CONVERSATION_SOCKETS_PER_USER conversation
 * sockets per user across all conversations.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { PushJob } from "../../objects/push-subscriptions";
import { deliverPushes } from "../../worker/queue";
import { b64uEncode } from "../../worker/push";
import { eventually, expectError, user } from "./api-helpers";
import { call, group, openSocket } from "./helpers";

async function keys() {
  const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair;
  const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  return { p256dh: b64uEncode(raw), auth: b64uEncode(crypto.getRandomValues(new Uint8Array(16))) };
}

describe("push endpoints", () => {
  it("are accepted only at the push services' hosts, never at an address or localhost", async () => {
    const a = await user("pl");
    const subscribe = async (endpoint: string) =>
      call("POST", "/push/subscriptions", { token: a.token, body: { endpoint, keys: await keys() } });
    for (const endpoint of [
      "https://127.0.0.1/push",
      "https://10.1.2.3/push",
      "https://[::1]/push",
      "https://[fd00::1]/push",
      "https://localhost/push",
      "https://metadata.google.internal/computeMetadata/v1/",
      "https://evil.example.com/push",
      "https://fcm.googleapis.com.evil.example/push",
      "https://notfcm.googleapis.com/push",
      "http://127.0.0.1:9999/push", // loopback http: only where PUSH_ALLOW_LOOPBACK_HTTP is set (npm start)
    ]) {
      expectError(await subscribe(endpoint), 400, "invalid_request");
    }
    for (const endpoint of [
      "https://fcm.googleapis.com/fcm/send/abc:def",
      "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
      "https://updates-autopush.push.services.mozilla.com/wpush/v2/x",
      "https://web.push.apple.com/QGxg",
      "https://wns2-by3p.notify.windows.com/w/?token=x",
    ]) {
      const res = await subscribe(endpoint);
      expect(res.status, endpoint).toBe(201);
    }
  });
});

function fakeBatch(job: PushJob) {
  const message = { body: job, attempts: 1, id: "m1", timestamp: new Date(), ack: vi.fn(), retry: vi.fn() };
  return { batch: { queue: "edge-chat-push", messages: [message], ackAll: vi.fn(), retryAll: vi.fn() } as unknown as MessageBatch<PushJob>, message };
}

describe("push delivery", () => {
  it("drops a 4xx answer other than 404/410/429 instead of retrying it; retries 429 and 5xx", async () => {
    const a = await user("pl");
    const job: PushJob = {
      userId: a.user_id,
      deviceId: a.device_id,
      subscription: { endpoint: "https://fcm.googleapis.com/fcm/send/x", keys: await keys() },
      payload: { type: "message", conversation_id: "g_x", seq: 1 },
    };
    const answers: Record<number, "ack" | "retry"> = { 400: "ack", 401: "ack", 403: "ack", 413: "ack", 429: "retry", 500: "retry", 503: "retry", 201: "ack" };
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    try {
      for (const [status, expected] of Object.entries(answers)) {
        fetchSpy.mockResolvedValueOnce(new Response(null, { status: Number(status) }));
        const { batch, message } = fakeBatch(job);
        await deliverPushes(batch, env);
        expect({ status, ack: message.ack.mock.calls.length, retry: message.retry.mock.calls.length }).toEqual({
          status,
          ack: expected === "ack" ? 1 : 0,
          retry: expected === "retry" ? 1 : 0,
        });
      }
    } finally {
      fetchSpy.mockRestore();
    }
  });
});

describe("devices per user (MAX_DEVICES_PER_USER, 100)", () => {
  it("refuses a login beyond 100 live devices with 422, until one is deleted", async () => {
    const a = await user("pl");
    const stmt = env.DB.prepare("INSERT INTO devices (id, user_id, name, created_at) VALUES (?, ?, NULL, ?)");
    await env.DB.batch(Array.from({ length: 99 }, (_, i) => stmt.bind(`d_seed${i}_${crypto.randomUUID().slice(0, 8)}`, a.user_id, Date.now())));
    const login = () => call("POST", "/auth/login", { body: { handle: a.handle, password: "correct horse" } });
    expectError(await login(), 422, "limit_exceeded");
    expect((await call("DELETE", `/devices/${a.device_id}`, { token: a.token })).status).toBe(204);
    expect((await login()).status).toBe(200);
  });
});

describe("conversation sockets per user (MAX_CONVERSATION_SOCKETS_PER_USER, 6 in these tests)", () => {
  it("are counted across all conversations, not only per conversation", async () => {
    const [a, b] = await Promise.all([user("pl"), user("pl")]);
    const [g1, g2, g3] = [await group(a, [b]), await group(a, [b]), await group(a, [b])];
    const open = [];
    for (let i = 0; i < 4; i++) open.push((await openSocket(`/conversations/${g1}/ws`, a.token)).socket!);
    for (let i = 0; i < 2; i++) open.push((await openSocket(`/conversations/${g2}/ws`, a.token)).socket!);
    const refused = await openSocket(`/conversations/${g3}/ws`, a.token);
    expect(refused.status).toBe(422);
    // Another user's count is their own.
    expect((await openSocket(`/conversations/${g3}/ws`, b.token)).status).toBe(101);
    open[0]!.ws.close(1000);
    await open[0]!.waitClosed();
    await eventually(async () => expect((await openSocket(`/conversations/${g3}/ws`, a.token)).status).toBe(101), 3000);
  });
});
