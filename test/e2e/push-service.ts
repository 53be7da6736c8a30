/**
 * A fake Web Push service (RFC 8030) for tests, on 127.0.0.1 with a random port.
 *
 * It plays both the push service and the browser: `newSubscription()` makes a real user-agent
 * key pair (P-256 ECDH) and a 16-byte auth secret and returns the PushSubscription JSON
 * pointing here. Each push it receives is checked as a strict push service and a browser
 * would, with node:crypto only, independently of worker/push:
 *
 * - VAPID (RFC 8292): `Authorization: vapid t=<JWT>, k=<key>`; the JWT is ES256 with a raw
 *   r‖s signature that verifies under k; `aud` is this service's origin; `exp` is in the
 *   future and at most 24 h ahead; `sub` is a `mailto:` or `https:` URI; k matches the
 *   subscription's applicationServerKey when one was given.
 * - Encryption (RFC 8291 / RFC 8188): `Content-Encoding: aes128gcm`; the body's header
 *   (salt, rs, keyid = the sender's ephemeral public key) and records decrypt with the
 *   subscription's private key and auth secret; padding ends in the right delimiter.
 * - `TTL` is present and a non-negative integer; the body is at most 4096 bytes.
 *
 * A push that passes is recorded in `received` (decrypted payload, headers, claims) and then
 * answered per the subscription's behaviour; one that fails is recorded in `rejected` with the
 * reason and answered 400 / 401 / 403 / 404 / 413 as a real service would.
 */
import { createDecipheriv, createECDH, createHmac, createPublicKey, randomBytes, verify as verifySignature } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface PushSubscriptionJSON {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/**
 * How a subscription answers a push that verified:
 * - "ok": 201 Created (the default)
 * - "gone": 410 Gone (the subscription expired or was unsubscribed)
 * - "not-found": 404 Not Found
 * - { fail: N, status?, retryAfter? }: `status` (default 500) for the first N pushes, with a
 *   Retry-After header if given, then 201.
 */
export type Behaviour = "ok" | "gone" | "not-found" | { fail: number; status?: number; retryAfter?: number };

export interface VapidClaims {
  aud: string;
  exp: number;
  sub: string;
  [claim: string]: unknown;
}

export interface ReceivedPush {
  path: string;
  /** What the service answered. */
  status: number;
  /** The decrypted payload parsed as JSON (undefined if it is not JSON). */
  payload: unknown;
  /** The decrypted payload as UTF-8. */
  text: string;
  /** The decrypted payload's bytes. */
  bytes: Buffer;
  /** Request headers, names lower-cased. */
  headers: Record<string, string>;
  ttl: number;
  urgency?: string;
  topic?: string;
  /** The verified VAPID JWT claims, and its header. */
  claims: VapidClaims;
  jwtHeader: Record<string, unknown>;
  /** The `k=` of the Authorization header (base64url VAPID public key). */
  vapidKey: string;
  /** RFC 8188 details of the body. */
  encryption: { rs: number; records: number; padding: number; salt: string; keyid: string; bodyBytes: number };
  at: number;
}

export interface RejectedPush {
  path: string;
  status: number;
  reason: string;
  headers: Record<string, string>;
  at: number;
}

export interface NewSubscriptionOptions {
  /** The VAPID public key the "browser" subscribed with; if set, a push signed with another key gets 403. */
  applicationServerKey?: string;
}

export interface PushService {
  /** `http://127.0.0.1:<port>`: the VAPID `aud` pushes must carry. */
  origin: string;
  /** A new subscription at `path` (e.g. "/push/alice-phone"), answering per `behaviour`. */
  newSubscription(path: string, behaviour?: Behaviour, opts?: NewSubscriptionOptions): PushSubscriptionJSON;
  setBehaviour(path: string, behaviour: Behaviour): void;
  /** Every push that verified and decrypted, in arrival order. */
  received: ReceivedPush[];
  /** Every push that did not, with why. */
  rejected: RejectedPush[];
  receivedFor(path: string): ReceivedPush[];
  /** The first received push matching (a path, or a predicate), waiting up to `timeoutMs` for it. */
  waitFor(match: string | ((p: ReceivedPush) => boolean), timeoutMs?: number): Promise<ReceivedPush>;
  /** Waits until `count` received pushes match, and returns them. */
  waitForCount(match: string | ((p: ReceivedPush) => boolean), count: number, timeoutMs?: number): Promise<ReceivedPush[]>;
  close(): Promise<void>;
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString("base64url");
const fromB64u = (s: string): Buffer => {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("not base64url");
  return Buffer.from(s, "base64url");
};

const MAX_JWT_AHEAD_SECONDS = 24 * 60 * 60;
const MAX_BODY = 4096;

class Rejection extends Error {
  constructor(
    readonly status: number,
    reason: string,
  ) {
    super(reason);
  }
}

interface Sub {
  path: string;
  ecdh: ReturnType<typeof createECDH>;
  uaPublic: Buffer;
  auth: Buffer;
  behaviour: Behaviour;
  failuresLeft: number;
  applicationServerKey?: string;
}

/** HKDF-SHA-256 written out from RFC 5869 with HMAC, so it shares nothing with WebCrypto's HKDF. */
function hkdf(salt: Buffer, ikm: Buffer, info: Buffer, length: number): Buffer {
  const prk = createHmac("sha256", salt).update(ikm).digest();
  let t = Buffer.alloc(0);
  let okm = Buffer.alloc(0);
  for (let i = 1; okm.length < length; i++) {
    t = createHmac("sha256", prk).update(Buffer.concat([t, info, Buffer.from([i])])).digest();
    okm = Buffer.concat([okm, t]);
  }
  return okm.subarray(0, length);
}

/**
 * Decrypts an `aes128gcm` Web Push body (RFC 8291 §3.4, RFC 8188 §2) as the user agent does.
 * `uaPrivate` is the 32-byte ECDH private key, `uaPublic` its 65-byte point, `auth` the secret.
 * Throws with the reason if anything does not check out.
 */
export function decryptAes128gcm(body: Buffer, uaPrivate: Buffer, uaPublic: Buffer, auth: Buffer) {
  if (body.length < 21) throw new Error("body shorter than the RFC 8188 header");
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  if (rs < 18) throw new Error(`record size ${rs} < 18`);
  if (idlen !== 65) throw new Error(`keyid length ${idlen}, expected 65 (the sender's uncompressed P-256 key)`);
  if (body.length < 21 + idlen) throw new Error("body shorter than its keyid");
  const asPublic = body.subarray(21, 21 + idlen);
  if (asPublic[0] !== 0x04) throw new Error("keyid is not an uncompressed P-256 point");

  const ecdh = createECDH("prime256v1");
  ecdh.setPrivateKey(uaPrivate);
  let ecdhSecret: Buffer;
  try {
    ecdhSecret = ecdh.computeSecret(asPublic);
  } catch {
    throw new Error("keyid is not a point on P-256");
  }
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0", "latin1"), uaPublic, asPublic]);
  const ikm = hkdf(auth, ecdhSecret, keyInfo, 32);
  const cek = hkdf(salt, ikm, Buffer.from("Content-Encoding: aes128gcm\0", "latin1"), 16);
  const nonce = hkdf(salt, ikm, Buffer.from("Content-Encoding: nonce\0", "latin1"), 12);

  const data = body.subarray(21 + idlen);
  if (data.length === 0) throw new Error("no records");
  const plain: Buffer[] = [];
  let records = 0;
  let padding = 0;
  for (let off = 0; off < data.length; off += rs) {
    const rec = data.subarray(off, off + rs);
    const last = off + rs >= data.length;
    if (rec.length < 17) throw new Error(`record ${records} shorter than a tag plus delimiter`);
    const iv = Buffer.from(nonce);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ records) >>> 0, 8); // XOR the record's sequence number into the nonce (RFC 8188 §2.3)
    const decipher = createDecipheriv("aes-128-gcm", cek, iv);
    decipher.setAuthTag(rec.subarray(rec.length - 16));
    let out: Buffer;
    try {
      out = Buffer.concat([decipher.update(rec.subarray(0, rec.length - 16)), decipher.final()]);
    } catch {
      throw new Error(`record ${records} failed AES-GCM authentication (wrong keys or derivation)`);
    }
    let end = out.length - 1;
    while (end >= 0 && out[end] === 0) end--;
    if (end < 0) throw new Error(`record ${records} has no padding delimiter`);
    const want = last ? 0x02 : 0x01;
    if (out[end] !== want) throw new Error(`record ${records} delimiter is 0x${out[end]!.toString(16)}, expected 0x0${want}`);
    padding += out.length - 1 - end;
    plain.push(out.subarray(0, end));
    records++;
  }
  return { plaintext: Buffer.concat(plain), rs, records, padding, salt: b64u(salt), keyid: b64u(asPublic) };
}

/** Parses `vapid t=<jwt>, k=<key>` (RFC 8292 §3). */
function parseVapidAuthorization(header: string | undefined): { t: string; k: string } {
  if (!header) throw new Rejection(401, "no Authorization header");
  const m = /^vapid\s+(.+)$/i.exec(header.trim());
  if (!m) throw new Rejection(401, `Authorization scheme is not vapid: ${header.slice(0, 20)}`);
  const params: Record<string, string> = {};
  for (const part of m[1]!.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) throw new Rejection(401, `malformed vapid parameter: ${part.trim()}`);
    params[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1).trim();
  }
  if (!params.t || !params.k) throw new Rejection(401, "vapid Authorization needs t= and k=");
  return { t: params.t, k: params.k };
}

/** Verifies the VAPID JWT with node:crypto; returns its header and claims. */
function verifyVapid(t: string, k: string, origin: string, nowMs: number) {
  let key;
  try {
    const pub = fromB64u(k);
    if (pub.length !== 65 || pub[0] !== 0x04) throw new Error();
    key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: b64u(pub.subarray(1, 33)), y: b64u(pub.subarray(33)) }, format: "jwk" });
  } catch {
    throw new Rejection(401, "k is not a base64url uncompressed P-256 public key");
  }
  const parts = t.split(".");
  if (parts.length !== 3) throw new Rejection(401, "t is not a compact JWS");
  const [h, p, s] = parts as [string, string, string];
  let header: Record<string, unknown>;
  let claims: VapidClaims;
  let sig: Buffer;
  try {
    header = JSON.parse(fromB64u(h).toString("utf8"));
    claims = JSON.parse(fromB64u(p).toString("utf8"));
    sig = fromB64u(s);
  } catch {
    throw new Rejection(401, "JWT parts are not base64url JSON");
  }
  if (header.alg !== "ES256") throw new Rejection(401, `JWT alg is ${String(header.alg)}, expected ES256`);
  if (header.typ !== undefined && header.typ !== "JWT") throw new Rejection(401, `JWT typ is ${String(header.typ)}`);
  if (sig.length !== 64) throw new Rejection(401, `JWT signature is ${sig.length} bytes; ES256 wants raw r||s (64), not DER`);
  const ok = verifySignature("sha256", Buffer.from(`${h}.${p}`, "latin1"), { key, dsaEncoding: "ieee-p1363" }, sig);
  if (!ok) throw new Rejection(401, "JWT signature does not verify under k");
  if (claims.aud !== origin) throw new Rejection(401, `JWT aud is ${String(claims.aud)}, expected ${origin}`);
  const now = Math.floor(nowMs / 1000);
  if (typeof claims.exp !== "number" || !Number.isInteger(claims.exp)) throw new Rejection(401, "JWT exp is not an integer");
  if (claims.exp <= now) throw new Rejection(401, "JWT has expired");
  if (claims.exp > now + MAX_JWT_AHEAD_SECONDS) throw new Rejection(401, "JWT exp is more than 24 hours ahead");
  if (typeof claims.sub !== "string" || !/^(mailto:|https:)/.test(claims.sub)) throw new Rejection(401, `JWT sub is not a mailto: or https: URI: ${String(claims.sub)}`);
  return { header, claims };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => ok(Buffer.concat(chunks)));
    req.on("error", fail);
  });
}

function lowerHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

export async function startPushService(): Promise<PushService> {
  const subs = new Map<string, Sub>();
  const received: ReceivedPush[] = [];
  const rejected: RejectedPush[] = [];
  const waiters = new Set<() => void>();
  let origin = "";
  let nextId = 1;

  const notify = () => {
    for (const w of [...waiters]) w();
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = new URL(req.url ?? "/", origin).pathname;
    const headers = lowerHeaders(req);
    const body = await readBody(req);
    try {
      if (req.method !== "POST") throw new Rejection(405, `method ${req.method}`);
      const sub = subs.get(path);
      if (!sub) throw new Rejection(404, "no such subscription");
      if (body.length > MAX_BODY) throw new Rejection(413, `body is ${body.length} bytes > ${MAX_BODY}`);

      const { t, k } = parseVapidAuthorization(headers.authorization);
      const { header: jwtHeader, claims } = verifyVapid(t, k, origin, Date.now());
      if (sub.applicationServerKey !== undefined && k !== sub.applicationServerKey) {
        throw new Rejection(403, "k is not the key this subscription was created with");
      }

      if (headers["content-encoding"] !== "aes128gcm") throw new Rejection(400, `Content-Encoding is ${headers["content-encoding"]}, expected aes128gcm`);
      if (headers.ttl === undefined || !/^\d+$/.test(headers.ttl)) throw new Rejection(400, `TTL header missing or invalid: ${headers.ttl}`);

      let dec: ReturnType<typeof decryptAes128gcm>;
      try {
        dec = decryptAes128gcm(body, sub.ecdh.getPrivateKey(), sub.uaPublic, sub.auth);
      } catch (e) {
        throw new Rejection(400, `decryption failed: ${(e as Error).message}`);
      }
      const text = dec.plaintext.toString("utf8");
      let payload: unknown;
      try {
        payload = JSON.parse(text);
      } catch {
        payload = undefined;
      }

      let status = 201;
      const extra: Record<string, string> = {};
      const b = sub.behaviour;
      if (b === "gone") status = 410;
      else if (b === "not-found") status = 404;
      else if (typeof b === "object" && sub.failuresLeft > 0) {
        sub.failuresLeft--;
        status = b.status ?? 500;
        if (b.retryAfter !== undefined) extra["Retry-After"] = String(b.retryAfter);
      }
      if (status === 201) extra.Location = `${origin}/m/${nextId++}`;

      received.push({
        path,
        status,
        payload,
        text,
        bytes: dec.plaintext,
        headers,
        ttl: Number(headers.ttl),
        urgency: headers.urgency,
        topic: headers.topic,
        claims,
        jwtHeader,
        vapidKey: k,
        encryption: { rs: dec.rs, records: dec.records, padding: dec.padding, salt: dec.salt, keyid: dec.keyid, bodyBytes: body.length },
        at: Date.now(),
      });
      res.writeHead(status, extra).end();
    } catch (e) {
      const status = e instanceof Rejection ? e.status : 500;
      const reason = (e as Error).message;
      rejected.push({ path, status, reason, headers, at: Date.now() });
      res.writeHead(status, { "Content-Type": "text/plain" }).end(reason);
    } finally {
      notify();
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500).end(String(e));
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => ok());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const matcher = (match: string | ((p: ReceivedPush) => boolean)) => (typeof match === "string" ? (p: ReceivedPush) => p.path === match : match);

  function waitForCount(match: string | ((p: ReceivedPush) => boolean), count: number, timeoutMs = 10_000): Promise<ReceivedPush[]> {
    const pred = matcher(match);
    return new Promise((ok, fail) => {
      const check = () => {
        const hits = received.filter(pred);
        if (hits.length >= count) {
          cleanup();
          ok(hits.slice(0, count));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        const why = rejected.length ? ` (rejected: ${rejected.map((r) => `${r.path} ${r.status} ${r.reason}`).join("; ")})` : "";
        fail(new Error(`push service: ${received.filter(pred).length}/${count} matching pushes after ${timeoutMs} ms${why}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  }

  return {
    origin,
    received,
    rejected,
    newSubscription(path, behaviour = "ok", opts = {}) {
      if (!path.startsWith("/")) path = `/${path}`;
      if (subs.has(path)) throw new Error(`subscription ${path} exists`);
      const ecdh = createECDH("prime256v1");
      ecdh.generateKeys();
      const sub: Sub = {
        path,
        ecdh,
        uaPublic: ecdh.getPublicKey(),
        auth: randomBytes(16),
        behaviour,
        failuresLeft: typeof behaviour === "object" ? behaviour.fail : 0,
        applicationServerKey: opts.applicationServerKey,
      };
      subs.set(path, sub);
      return { endpoint: `${origin}${path}`, keys: { p256dh: b64u(sub.uaPublic), auth: b64u(sub.auth) } };
    },
    setBehaviour(path, behaviour) {
      const sub = subs.get(path.startsWith("/") ? path : `/${path}`);
      if (!sub) throw new Error(`no subscription ${path}`);
      sub.behaviour = behaviour;
      sub.failuresLeft = typeof behaviour === "object" ? behaviour.fail : 0;
    },
    receivedFor: (path) => received.filter((p) => p.path === path),
    waitFor: (match, timeoutMs) => waitForCount(match, 1, timeoutMs).then((r) => r[0]!),
    waitForCount,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
