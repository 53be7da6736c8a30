/**
 * worker/push inside workerd: VAPID keys and JWT (RFC 8292), endpoint policy, and payload
 * encryption (RFC 8291 / RFC 8188), proved by decrypting here with WebCrypto as a browser would
 * and by reproducing the RFC 8291 Appendix A example byte for byte.
 */
import { describe, expect, it } from "vitest";
import {
  b64uDecode,
  b64uEncode,
  buildPushRequest,
  createVapidJwt,
  encryptAes128gcm,
  generateVapidKeys,
  isAllowedEndpoint,
  MAX_PLAINTEXT,
  parseSubscription,
  pushOutcome,
  WebPushError,
  type PushSubscriptionJSON,
  type VapidConfig,
} from "../../worker/push";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: ArrayBuffer | Uint8Array) => new TextDecoder().decode(b);

async function vapidConfig(subject = "mailto:ops@example.com"): Promise<VapidConfig> {
  return { ...(await generateVapidKeys()), subject };
}

/** A browser's side of a subscription: an ECDH key pair and an auth secret. */
async function userAgent(endpoint = "https://push.example.net/send/abc123?x=1") {
  const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair;
  const publicKey = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  const auth = crypto.getRandomValues(new Uint8Array(16));
  const subscription: PushSubscriptionJSON = { endpoint, keys: { p256dh: b64uEncode(publicKey), auth: b64uEncode(auth) } };
  return { privateKey: pair.privateKey, publicKey, auth, subscription };
}

async function hkdf(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, bytes: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, bytes * 8));
}

const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
};

/** The user agent's decryption (RFC 8291 §3.4 + RFC 8188 §2), written here independently of the module. */
async function uaDecrypt(body: Uint8Array, ua: { privateKey: CryptoKey; publicKey: Uint8Array; auth: Uint8Array }) {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const salt = body.slice(0, 16);
  const rs = view.getUint32(16);
  const idlen = body[20]!;
  const asPublic = body.slice(21, 21 + idlen);
  const ciphertext = body.slice(21 + idlen);
  const asKey = await crypto.subtle.importKey("raw", asPublic, { name: "ECDH", namedCurve: "P-256" }, false, []);
  const params = { name: "ECDH", public: asKey } as unknown as SubtleCryptoDeriveKeyAlgorithm;
  const ecdhSecret = new Uint8Array(await crypto.subtle.deriveBits(params, ua.privateKey, 256));
  const ikm = await hkdf(ua.auth, ecdhSecret, cat(enc("WebPush: info\0"), ua.publicKey, asPublic), 32);
  const cek = await hkdf(salt, ikm, enc("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, enc("Content-Encoding: nonce\0"), 12);
  const key = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["decrypt"]);
  const padded = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce }, key, ciphertext));
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  return { rs, idlen, asPublic, ciphertextBytes: ciphertext.length, delimiter: padded[end], padding: padded.length - 1 - end, plaintext: padded.slice(0, end) };
}

function parseJwt(jwt: string) {
  const [h, p, s] = jwt.split(".") as [string, string, string];
  return { header: JSON.parse(dec(b64uDecode(h))), claims: JSON.parse(dec(b64uDecode(p))), signature: b64uDecode(s), signingInput: `${h}.${p}` };
}

function parseAuthorization(value: string | null) {
  const m = /^vapid t=([^,\s]+), k=([A-Za-z0-9_-]+)$/.exec(value ?? "");
  if (!m) throw new Error(`not a vapid Authorization: ${value}`);
  return { t: m[1]!, k: m[2]! };
}

describe("generateVapidKeys", () => {
  it("returns a base64url uncompressed P-256 point and a 32-byte private scalar", async () => {
    const keys = await generateVapidKeys();
    expect(keys.publicKey).toMatch(/^[A-Za-z0-9_-]{87}$/);
    expect(keys.privateKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const pub = b64uDecode(keys.publicKey);
    expect(pub.length).toBe(65);
    expect(pub[0]).toBe(0x04);
    expect(b64uDecode(keys.privateKey).length).toBe(32);
    // The public key is what browsers pass as applicationServerKey: importable as a raw P-256 key.
    await crypto.subtle.importKey("raw", pub, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    const again = await generateVapidKeys();
    expect(again.publicKey).not.toBe(keys.publicKey);
    expect(again.privateKey).not.toBe(keys.privateKey);
  });

  it("rejects keys that do not belong together or are malformed", async () => {
    const a = await generateVapidKeys();
    const b = await generateVapidKeys();
    const jwt = (vapid: VapidConfig) => createVapidJwt({ vapid, audience: "https://push.example.net" });
    await expect(jwt({ publicKey: a.publicKey, privateKey: b.privateKey, subject: "mailto:x@example.com" })).rejects.toThrow(/does not match the private key/);
    await expect(jwt({ publicKey: a.publicKey.slice(0, 40), privateKey: a.privateKey, subject: "mailto:x@example.com" })).rejects.toThrow(WebPushError);
    await expect(jwt({ publicKey: a.publicKey, privateKey: "AAAA", subject: "mailto:x@example.com" })).rejects.toThrow(/32-byte/);
  });
});

describe("VAPID JWT", () => {
  it("is ES256 with aud = endpoint origin, exp = now + 12 h, sub = subject, signed raw r||s under k", async () => {
    const vapid = await vapidConfig("mailto:ops@example.com");
    const ua = await userAgent("https://push.example.net:8443/send/abc123?x=1#f");
    const now = Date.UTC(2030, 0, 1, 12, 0, 0);
    const req = await buildPushRequest({ subscription: ua.subscription, payload: "{}", vapid, ttlSeconds: 60, now });

    const { t, k } = parseAuthorization(req.headers.get("Authorization"));
    expect(k).toBe(vapid.publicKey);
    const jwt = parseJwt(t);
    expect(jwt.header).toEqual({ typ: "JWT", alg: "ES256" });
    expect(jwt.claims).toEqual({ aud: "https://push.example.net:8443", exp: now / 1000 + 12 * 3600, sub: "mailto:ops@example.com" });
    expect(jwt.signature.length).toBe(64);
    const key = await crypto.subtle.importKey("raw", b64uDecode(k), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, jwt.signature, enc(jwt.signingInput))).toBe(true);
    const tampered = enc(jwt.signingInput.replace(/.$/, (c) => (c === "A" ? "B" : "A")));
    expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, jwt.signature, tampered)).toBe(false);
  });

  it("defaults exp to 12 h from the real clock and refuses more than 24 h", async () => {
    const vapid = await vapidConfig("https://chat.example.com/contact");
    const before = Math.floor(Date.now() / 1000);
    const { claims } = parseJwt(await createVapidJwt({ vapid, audience: "https://push.example.net" }));
    expect(claims.sub).toBe("https://chat.example.com/contact");
    expect(claims.exp).toBeGreaterThanOrEqual(before + 12 * 3600);
    expect(claims.exp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 12 * 3600);
    const day = parseJwt(await createVapidJwt({ vapid, audience: "https://push.example.net", lifetimeSeconds: 86400, now: 0 }));
    expect(day.claims.exp).toBe(86400);
    await expect(createVapidJwt({ vapid, audience: "https://push.example.net", lifetimeSeconds: 86401 })).rejects.toThrow(/lifetime/);
  });

  it("requires a mailto: or https: subject", async () => {
    const keys = await generateVapidKeys();
    for (const subject of ["ops@example.com", "http://example.com", "mailto:", "", "https://"]) {
      await expect(createVapidJwt({ vapid: { ...keys, subject }, audience: "https://push.example.net" }), subject).rejects.toThrow(/subject/);
    }
  });
});

describe("isAllowedEndpoint", () => {
  const cases: [string, boolean, boolean][] = [
    // url, allowed without loopback http, allowed with it
    ["https://fcm.googleapis.com/fcm/send/abc", true, true],
    ["https://updates.push.services.mozilla.com/wpush/v2/gAAA", true, true],
    // Never an IP literal or localhost over https: (issue 11): the server would POST into its own network.
    ["https://127.0.0.1/x", false, false],
    ["https://10.0.0.1/x", false, false],
    ["https://[::1]/x", false, false],
    ["https://localhost/x", false, false],
    ["https://push.localhost/x", false, false],
    ["http://push.example.net/x", false, false],
    ["http://127.0.0.1:8080/x", false, true],
    ["http://127.1.2.3/x", false, true],
    ["http://127.1/x", false, true], // the URL parser reads this as 127.0.0.1
    ["http://localhost:9000/x", false, true],
    ["http://LOCALHOST/x", false, true],
    ["http://[::1]:9000/x", false, true],
    ["http://[0:0:0:0:0:0:0:1]/x", false, true],
    ["http://[::ffff:127.0.0.1]/x", false, true],
    ["http://128.0.0.1/x", false, false],
    ["http://10.0.0.1/x", false, false],
    ["http://[::2]/x", false, false],
    ["http://localhost.example.com/x", false, false],
    ["http://127.0.0.1.example.com/x", false, false],
    ["https://user:pass@push.example.net/x", false, false],
    ["ftp://push.example.net/x", false, false],
    ["ws://127.0.0.1/x", false, false],
    ["not a url", false, false],
    ["", false, false],
  ];
  it.each(cases)("%s → %s / %s with loopback http", (url, strict, loose) => {
    expect(isAllowedEndpoint(url)).toBe(strict);
    expect(isAllowedEndpoint(url, { allowLoopbackHttp: false })).toBe(strict);
    expect(isAllowedEndpoint(url, { allowLoopbackHttp: true })).toBe(loose);
  });

  it("takes URL objects", () => {
    expect(isAllowedEndpoint(new URL("https://push.example.net/a"))).toBe(true);
    expect(isAllowedEndpoint(new URL("http://127.0.0.1/a"), { allowLoopbackHttp: true })).toBe(true);
  });
});

describe("buildPushRequest", () => {
  it("round trip: the user agent decrypts exactly the payload (aes128gcm, one 4096-rs record, 0x02 delimiter)", async () => {
    const vapid = await vapidConfig();
    const ua = await userAgent();
    const payload = JSON.stringify({ conversation_id: "c_abc", seq: 7 });
    const req = await buildPushRequest({ subscription: ua.subscription, payload, vapid, ttlSeconds: 86400, urgency: "high", topic: "c_abc" });

    expect(req.method).toBe("POST");
    expect(req.url).toBe(ua.subscription.endpoint);
    expect(req.headers.get("Content-Encoding")).toBe("aes128gcm");
    expect(req.headers.get("Content-Type")).toBe("application/octet-stream");
    expect(req.headers.get("TTL")).toBe("86400");
    expect(req.headers.get("Urgency")).toBe("high");
    expect(req.headers.get("Topic")).toBe("c_abc");

    const body = new Uint8Array(await req.arrayBuffer());
    const out = await uaDecrypt(body, ua);
    expect(dec(out.plaintext)).toBe(payload);
    expect(out.rs).toBe(4096);
    expect(out.idlen).toBe(65);
    expect(out.asPublic[0]).toBe(0x04);
    expect(b64uEncode(out.asPublic)).not.toBe(vapid.publicKey); // keyid is the ephemeral ECDH key
    expect(out.delimiter).toBe(0x02);
    expect(out.padding).toBe(0);
    expect(body.length).toBe(86 + enc(payload).length + 1 + 16);
    expect(out.ciphertextBytes).toBeLessThanOrEqual(out.rs);
  });

  it("carries bytes and padding, omits optional headers, and uses a fresh salt and key each time", async () => {
    const vapid = await vapidConfig();
    const ua = await userAgent();
    const payload = new Uint8Array([0, 2, 0xff, 0x02, 0, 0]);
    const r1 = await buildPushRequest({ subscription: ua.subscription, payload, vapid, ttlSeconds: 0, padding: 50 });
    const r2 = await buildPushRequest({ subscription: ua.subscription, payload, vapid, ttlSeconds: 0, padding: 50 });
    expect(r1.headers.get("TTL")).toBe("0");
    expect(r1.headers.has("Urgency")).toBe(false);
    expect(r1.headers.has("Topic")).toBe(false);
    const b1 = new Uint8Array(await r1.arrayBuffer());
    const b2 = new Uint8Array(await r2.arrayBuffer());
    const o1 = await uaDecrypt(b1, ua);
    const o2 = await uaDecrypt(b2, ua);
    expect(o1.plaintext).toEqual(payload);
    expect(o2.plaintext).toEqual(payload);
    expect(o1.padding).toBe(50);
    expect(b1.slice(0, 16)).not.toEqual(b2.slice(0, 16));
    expect(o1.asPublic).not.toEqual(o2.asPublic);
  });

  it("another subscription's keys cannot decrypt it", async () => {
    const vapid = await vapidConfig();
    const ua = await userAgent();
    const other = await userAgent();
    const req = await buildPushRequest({ subscription: ua.subscription, payload: "secret", vapid, ttlSeconds: 60 });
    await expect(uaDecrypt(new Uint8Array(await req.arrayBuffer()), other)).rejects.toThrow();
  });

  it("accepts up to 3993 bytes (a 4096-byte body) and refuses more", async () => {
    const vapid = await vapidConfig();
    const ua = await userAgent();
    expect(MAX_PLAINTEXT).toBe(3993);
    const req = await buildPushRequest({ subscription: ua.subscription, payload: "y".repeat(3993), vapid, ttlSeconds: 60 });
    const body = new Uint8Array(await req.arrayBuffer());
    expect(body.length).toBe(4096);
    expect(dec((await uaDecrypt(body, ua)).plaintext)).toBe("y".repeat(3993));
    await expect(buildPushRequest({ subscription: ua.subscription, payload: "y".repeat(3994), vapid, ttlSeconds: 60 })).rejects.toThrow(/too large/);
    await expect(buildPushRequest({ subscription: ua.subscription, payload: "y".repeat(3900), padding: 94, vapid, ttlSeconds: 60 })).rejects.toThrow(/too large/);
  });

  it("validates endpoint, keys and options", async () => {
    const vapid = await vapidConfig();
    const ua = await userAgent();
    const base = { payload: "{}", vapid, ttlSeconds: 60 };
    const withEndpoint = (endpoint: string) => ({ ...ua.subscription, endpoint });
    await expect(buildPushRequest({ ...base, subscription: withEndpoint("http://push.example.net/x") })).rejects.toThrow(WebPushError);
    await expect(buildPushRequest({ ...base, subscription: withEndpoint("http://127.0.0.1:9/x") })).rejects.toThrow(/https/);
    const loop = await buildPushRequest({ ...base, subscription: withEndpoint("http://127.0.0.1:9/x"), allowLoopbackHttp: true });
    expect(parseJwt(parseAuthorization(loop.headers.get("Authorization")).t).claims.aud).toBe("http://127.0.0.1:9");
    await expect(buildPushRequest({ ...base, subscription: withEndpoint("http://example.com/x"), allowLoopbackHttp: true })).rejects.toThrow(/https/);

    const keys = ua.subscription.keys;
    const offCurve = b64uEncode(cat(new Uint8Array([4]), new Uint8Array(64)));
    for (const bad of [{ ...keys, auth: b64uEncode(new Uint8Array(15)) }, { ...keys, p256dh: keys.p256dh.slice(2) }, { ...keys, p256dh: offCurve }, { ...keys, p256dh: "!!!" }]) {
      await expect(buildPushRequest({ ...base, subscription: { ...ua.subscription, keys: bad } }), JSON.stringify(bad)).rejects.toThrow(WebPushError);
    }
    await expect(buildPushRequest({ ...base, subscription: ua.subscription, ttlSeconds: -1 })).rejects.toThrow(/ttl/);
    await expect(buildPushRequest({ ...base, subscription: ua.subscription, ttlSeconds: 1.5 })).rejects.toThrow(/ttl/);
    await expect(buildPushRequest({ ...base, subscription: ua.subscription, urgency: "urgent" as never })).rejects.toThrow(/urgency/);
    await expect(buildPushRequest({ ...base, subscription: ua.subscription, topic: "has space" })).rejects.toThrow(/topic/);
    await expect(buildPushRequest({ ...base, subscription: ua.subscription, topic: "t".repeat(33) })).rejects.toThrow(/topic/);
    await expect(buildPushRequest({ ...base, subscription: ua.subscription, vapid: { ...vapid, subject: "ops@example.com" } })).rejects.toThrow(/subject/);
  });
});

describe("encryptAes128gcm", () => {
  it("reproduces the RFC 8291 Appendix A example byte for byte", async () => {
    const asPublic = b64uDecode("BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8");
    const asPrivate = await crypto.subtle.importKey(
      "jwk",
      { kty: "EC", crv: "P-256", x: b64uEncode(asPublic.slice(1, 33)), y: b64uEncode(asPublic.slice(33)), d: "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw" },
      { name: "ECDH", namedCurve: "P-256" },
      false,
      ["deriveBits"],
    );
    const body = await encryptAes128gcm({
      keys: { p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4", auth: "BTBZMqHH6r4Tts7J_aSIgg" },
      plaintext: enc("When I grow up, I want to be a watermelon"),
      salt: b64uDecode("DGv6ra1nlYgDCS1FRnbzlw"),
      sender: { privateKey: asPrivate, publicKey: asPublic },
    });
    expect(b64uEncode(body)).toBe(
      "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
    );
  });
});

describe("parseSubscription", () => {
  it("accepts a browser's PushSubscription JSON and refuses bad ones", async () => {
    const ua = await userAgent();
    const json = { ...ua.subscription, expirationTime: null };
    expect(await parseSubscription(json)).toEqual(ua.subscription);
    const local = { ...ua.subscription, endpoint: "http://localhost:8787/push/1" };
    await expect(parseSubscription(local)).rejects.toThrow(/https/);
    expect(await parseSubscription(local, { allowLoopbackHttp: true })).toEqual(local);
    for (const bad of [null, "x", {}, { endpoint: ua.subscription.endpoint }, { ...ua.subscription, keys: { p256dh: 1, auth: "x" } }, { ...ua.subscription, keys: { ...ua.subscription.keys, auth: "" } }]) {
      await expect(parseSubscription(bad), JSON.stringify(bad)).rejects.toThrow(WebPushError);
    }
  });
});

describe("pushOutcome", () => {
  const h = (init?: Record<string, string>) => new Headers(init);
  it("classifies push service answers", () => {
    expect(pushOutcome({ status: 201, headers: h() })).toEqual({ kind: "delivered" });
    expect(pushOutcome({ status: 410, headers: h() })).toEqual({ kind: "gone" });
    expect(pushOutcome({ status: 404, headers: h() })).toEqual({ kind: "gone" });
    expect(pushOutcome({ status: 429, headers: h({ "Retry-After": "30" }) })).toEqual({ kind: "retry", retryAfterSeconds: 30 });
    expect(pushOutcome({ status: 503, headers: h() })).toEqual({ kind: "retry" });
    expect(pushOutcome({ status: 413, headers: h() })).toEqual({ kind: "rejected", status: 413 });
    expect(pushOutcome({ status: 403, headers: h() })).toEqual({ kind: "rejected", status: 403 });
  });
});
