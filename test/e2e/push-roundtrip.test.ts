/**
 * Cross-check of worker/push (WebCrypto) against the fake push service (node:crypto), in Node:
 * requests built by buildPushRequest are sent over HTTP to push-service.ts, which verifies the
 * VAPID JWT and decrypts the body on its own. No local server needed.
 */
import { createECDH } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildPushRequest, generateVapidKeys, pushOutcome, type VapidConfig } from "../../worker/push";
import { decryptAes128gcm, startPushService, type PushService } from "./push-service";

let service: PushService;
let vapid: VapidConfig;

beforeAll(async () => {
  service = await startPushService();
  vapid = { ...(await generateVapidKeys()), subject: "mailto:push-test@example.com" };
});

afterAll(async () => {
  await service?.close();
});

/** Re-sends a built request to another URL (to test the service's own checks). */
async function resend(req: Request, url: string): Promise<Response> {
  return fetch(url, { method: req.method, headers: req.headers, body: await req.arrayBuffer() });
}

describe("fake push service", () => {
  it("decrypts the RFC 8291 Appendix A example", () => {
    const uaPrivate = Buffer.from("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94", "base64url");
    const ecdh = createECDH("prime256v1");
    ecdh.setPrivateKey(uaPrivate);
    expect(ecdh.getPublicKey().toString("base64url")).toBe("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4");
    const body = Buffer.from(
      "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
      "base64url",
    );
    const out = decryptAes128gcm(body, uaPrivate, ecdh.getPublicKey(), Buffer.from("BTBZMqHH6r4Tts7J_aSIgg", "base64url"));
    expect(out.plaintext.toString("utf8")).toBe("When I grow up, I want to be a watermelon");
    expect(out).toMatchObject({ rs: 4096, records: 1, padding: 0 });
  });
});

describe("worker/push → fake push service", () => {
  it("delivers: the service verifies the VAPID JWT and decrypts the exact payload", async () => {
    const sub = service.newSubscription("/push/ok", "ok", { applicationServerKey: vapid.publicKey });
    const payload = { conversation_id: "c_0123456789", seq: 42 };
    const before = Math.floor(Date.now() / 1000);
    const req = await buildPushRequest({
      subscription: sub,
      payload: JSON.stringify(payload),
      vapid,
      ttlSeconds: 3600,
      urgency: "high",
      topic: "conv-c_0123456789",
      allowLoopbackHttp: true,
    });
    const res = await fetch(req);
    expect(res.status, await res.clone().text()).toBe(201);
    expect(res.headers.get("location")).toMatch(new RegExp(`^${service.origin}/m/\\d+$`));
    expect(pushOutcome(res)).toEqual({ kind: "delivered" });

    const got = await service.waitFor("/push/ok");
    expect(service.rejected).toEqual([]);
    expect(got.payload).toEqual(payload);
    expect(got.text).toBe(JSON.stringify(payload));
    expect(got.claims.aud).toBe(service.origin);
    expect(got.claims.sub).toBe("mailto:push-test@example.com");
    expect(got.claims.exp).toBeGreaterThanOrEqual(before + 12 * 3600);
    expect(got.claims.exp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 12 * 3600);
    expect(got.jwtHeader).toEqual({ typ: "JWT", alg: "ES256" });
    expect(got.vapidKey).toBe(vapid.publicKey);
    expect(got.ttl).toBe(3600);
    expect(got.urgency).toBe("high");
    expect(got.topic).toBe("conv-c_0123456789");
    expect(got.headers["content-encoding"]).toBe("aes128gcm");
    expect(got.headers["content-type"]).toBe("application/octet-stream");
    expect(got.headers["content-length"]).toBe(String(got.encryption.bodyBytes));
    expect(got.encryption).toMatchObject({ rs: 4096, records: 1, padding: 0 });
    expect(got.encryption.keyid).not.toBe(vapid.publicKey); // an ephemeral ECDH key, not the VAPID key
  });

  it("uses a fresh salt and ephemeral key per message, and carries padding and binary payloads", async () => {
    const sub = service.newSubscription("/push/binary");
    const bytes = new Uint8Array([0, 1, 2, 0xff, 0x02, 0]);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(await buildPushRequest({ subscription: sub, payload: bytes, vapid, ttlSeconds: 0, padding: 100, allowLoopbackHttp: true }));
      expect(res.status).toBe(201);
    }
    const [a, b] = await service.waitForCount("/push/binary", 2);
    expect(new Uint8Array(a!.bytes)).toEqual(bytes);
    expect(new Uint8Array(b!.bytes)).toEqual(bytes);
    expect(a!.encryption.padding).toBe(100);
    expect(a!.ttl).toBe(0);
    expect(a!.encryption.salt).not.toBe(b!.encryption.salt);
    expect(a!.encryption.keyid).not.toBe(b!.encryption.keyid);
  });

  it("a maximal payload (3993 bytes) fills exactly 4096 bytes and is accepted", async () => {
    const sub = service.newSubscription("/push/max");
    const text = "x".repeat(3993);
    const res = await fetch(await buildPushRequest({ subscription: sub, payload: text, vapid, ttlSeconds: 60, allowLoopbackHttp: true }));
    expect(res.status).toBe(201);
    const got = await service.waitFor("/push/max");
    expect(got.text).toBe(text);
    expect(got.encryption.bodyBytes).toBe(4096);
  });

  it("410 Gone and 404 are passed through, and mean delete", async () => {
    const gone = service.newSubscription("/push/gone", "gone");
    const res = await fetch(await buildPushRequest({ subscription: gone, payload: "{}", vapid, ttlSeconds: 60, allowLoopbackHttp: true }));
    expect(res.status).toBe(410);
    expect(pushOutcome(res)).toEqual({ kind: "gone" });
    expect((await service.waitFor("/push/gone")).status).toBe(410);

    const missing = service.newSubscription("/push/missing", "not-found");
    const res404 = await fetch(await buildPushRequest({ subscription: missing, payload: "{}", vapid, ttlSeconds: 60, allowLoopbackHttp: true }));
    expect(res404.status).toBe(404);
    expect(pushOutcome(res404)).toEqual({ kind: "gone" });
  });

  it("fails N times with 500 (and Retry-After) then accepts", async () => {
    const sub = service.newSubscription("/push/flaky", { fail: 2, retryAfter: 3 });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(await buildPushRequest({ subscription: sub, payload: `{"n":${i}}`, vapid, ttlSeconds: 60, allowLoopbackHttp: true }));
      statuses.push(res.status);
      if (i === 0) expect(pushOutcome(res)).toEqual({ kind: "retry", retryAfterSeconds: 3 });
    }
    expect(statuses).toEqual([500, 500, 201]);
    expect((await service.waitForCount("/push/flaky", 3)).map((p) => p.payload)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
  });

  it("the service really checks: wrong aud, wrong keys and a foreign VAPID key are refused", async () => {
    const a = service.newSubscription("/push/check-a", "ok", { applicationServerKey: vapid.publicKey });
    const b = service.newSubscription("/push/check-b");
    const rejectedBefore = service.rejected.length;

    // Built for another origin: aud does not match.
    const port = new URL(service.origin).port;
    const wrongAud = await buildPushRequest({ subscription: { ...b, endpoint: `http://localhost:${port}/push/check-b` }, payload: "{}", vapid, ttlSeconds: 60, allowLoopbackHttp: true });
    expect((await resend(wrongAud, `${service.origin}/push/check-b`)).status).toBe(401);

    // Encrypted for b, sent to a: decryption fails.
    const forB = await buildPushRequest({ subscription: b, payload: "{}", vapid, ttlSeconds: 60, allowLoopbackHttp: true });
    expect((await resend(forB, `${service.origin}/push/check-a`)).status).toBe(400);

    // Signed by a key other than the one a subscribed with.
    const other = { ...(await generateVapidKeys()), subject: "https://example.com/contact" };
    expect((await fetch(await buildPushRequest({ subscription: a, payload: "{}", vapid: other, ttlSeconds: 60, allowLoopbackHttp: true }))).status).toBe(403);

    const reasons = service.rejected.slice(rejectedBefore).map((r) => r.reason);
    expect(reasons[0]).toMatch(/aud/);
    expect(reasons[1]).toMatch(/decryption failed/);
    expect(reasons[2]).toMatch(/not the key/);
    expect(service.receivedFor("/push/check-a")).toEqual([]);
  });

  it("refuses an http: loopback endpoint unless allowed", async () => {
    const sub = service.newSubscription("/push/strict");
    await expect(buildPushRequest({ subscription: sub, payload: "{}", vapid, ttlSeconds: 60 })).rejects.toThrow(/https/);
  });
});
