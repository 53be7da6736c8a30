/**
 * VAPID (RFC 8292): the application server's P-256 key pair and the ES256 JWT that
 * identifies it to push services, with WebCrypto only.
 *
 * Key format (what `generateVapidKeys()` returns and `VapidConfig` takes):
 * - `publicKey`: base64url of the uncompressed P-256 point (65 bytes, leading 0x04). This is
 *   the `applicationServerKey` browsers subscribe with, the `k=` of the Authorization header,
 *   and what `GET /v1/push/vapid-public-key` serves.
 * - `privateKey`: base64url of the 32-byte private scalar `d` (the JWK `d` member). The same
 *   format as `web-push generate-vapid-keys`, so existing key pairs can be reused.
 */
import { b64uDecode, b64uEncode, utf8 } from "./bytes";
import { WebPushError } from "./errors";

export interface VapidKeys {
  /** base64url, uncompressed P-256 point (65 bytes). */
  publicKey: string;
  /** base64url, the 32-byte private scalar d. Secret. */
  privateKey: string;
}

export interface VapidConfig extends VapidKeys {
  /** Contact for the push service operator: a `mailto:` or `https:` URI (RFC 8292 §2.1). */
  subject: string;
}

/** RFC 8292 §2: exp must be no more than 24 hours after the request. */
export const MAX_JWT_LIFETIME_SECONDS = 24 * 60 * 60;
/** What we use: 12 hours, which leaves room for clock skew between us and the push service. */
export const DEFAULT_JWT_LIFETIME_SECONDS = 12 * 60 * 60;

/** A fresh VAPID key pair. */
export async function generateVapidKeys(): Promise<VapidKeys> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const raw = (await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer;
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  if (!jwk.d) throw new WebPushError("WebCrypto did not export the private scalar");
  return { publicKey: b64uEncode(raw), privateKey: jwk.d };
}

/** Whether `subject` is a usable VAPID `sub`: a `mailto:` URI with an address, or an `https:` URL. */
export function isValidVapidSubject(subject: string): boolean {
  if (/^mailto:[^\s]+@[^\s]+$/i.test(subject)) return true;
  if (!/^https:/i.test(subject)) return false;
  try {
    return new URL(subject).protocol === "https:";
  } catch {
    return false;
  }
}

let cached: { publicKey: string; privateKey: string; key: Promise<CryptoKey> } | undefined;

/**
 * The ECDSA signing key for a VAPID key pair. Checks the formats and that the two halves belong
 * together (a mismatch would otherwise surface only as 401/403 from every push service).
 * The last pair imported is cached, since a deployment has one.
 */
export function importVapidSigningKey(keys: VapidKeys): Promise<CryptoKey> {
  if (cached && cached.publicKey === keys.publicKey && cached.privateKey === keys.privateKey) return cached.key;
  const key = importChecked(keys);
  cached = { publicKey: keys.publicKey, privateKey: keys.privateKey, key };
  key.catch(() => {
    if (cached?.key === key) cached = undefined;
  });
  return key;
}

async function importChecked(keys: VapidKeys): Promise<CryptoKey> {
  let pub: Uint8Array<ArrayBuffer>;
  let d: Uint8Array<ArrayBuffer>;
  try {
    pub = b64uDecode(keys.publicKey);
    d = b64uDecode(keys.privateKey);
  } catch {
    throw new WebPushError("VAPID keys are not base64url");
  }
  if (pub.length !== 65 || pub[0] !== 0x04) throw new WebPushError("VAPID public key is not an uncompressed P-256 point (65 bytes)");
  if (d.length !== 32) throw new WebPushError("VAPID private key is not a 32-byte P-256 scalar");
  const jwk: JsonWebKey = { kty: "EC", crv: "P-256", x: b64uEncode(pub.subarray(1, 33)), y: b64uEncode(pub.subarray(33, 65)), d: b64uEncode(d), ext: false };
  let signing: CryptoKey;
  let verifying: CryptoKey;
  try {
    signing = await crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    verifying = await crypto.subtle.importKey("raw", pub, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  } catch {
    throw new WebPushError("VAPID keys are not a valid P-256 key pair, or the public key does not match the private key");
  }
  const probe = utf8("vapid key pair check");
  const alg = { name: "ECDSA", hash: "SHA-256" };
  const sig = await crypto.subtle.sign(alg, signing, probe);
  if (!(await crypto.subtle.verify(alg, verifying, sig, probe))) throw new WebPushError("VAPID public key does not match the private key");
  return signing;
}

export interface VapidJwtOptions {
  vapid: VapidConfig;
  /** The push resource's origin, e.g. `https://fcm.googleapis.com` (the `aud` claim). */
  audience: string;
  /** Lifetime in seconds; at most 24 h. Default 12 h. */
  lifetimeSeconds?: number;
  /** The current time in ms since the epoch. Default `Date.now()`. */
  now?: number;
}

/** The signed VAPID JWT: header `{"typ":"JWT","alg":"ES256"}`, claims `{aud, exp, sub}`, signature raw r‖s (JWS, not DER). */
export async function createVapidJwt(opts: VapidJwtOptions): Promise<string> {
  const lifetime = opts.lifetimeSeconds ?? DEFAULT_JWT_LIFETIME_SECONDS;
  if (!Number.isInteger(lifetime) || lifetime <= 0 || lifetime > MAX_JWT_LIFETIME_SECONDS) {
    throw new WebPushError("VAPID JWT lifetime must be an integer number of seconds in (0, 86400]");
  }
  if (!isValidVapidSubject(opts.vapid.subject)) throw new WebPushError("VAPID subject must be a mailto: or https: URI");
  const key = await importVapidSigningKey(opts.vapid);
  const exp = Math.floor((opts.now ?? Date.now()) / 1000) + lifetime;
  const signingInput = `${b64uEncode(JSON.stringify({ typ: "JWT", alg: "ES256" }))}.${b64uEncode(JSON.stringify({ aud: opts.audience, exp, sub: opts.vapid.subject }))}`;
  // WebCrypto's ECDSA signature is already IEEE P1363 (r‖s, 64 bytes), which is what JWS ES256 wants.
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, utf8(signingInput));
  return `${signingInput}.${b64uEncode(sig)}`;
}

/** The `Authorization` header value: `vapid t=<jwt>, k=<publicKey>` (RFC 8292 §3). */
export async function vapidAuthorization(opts: VapidJwtOptions): Promise<string> {
  // k is re-encoded so that a key configured with padding or the standard alphabet still goes out as base64url.
  return `vapid t=${await createVapidJwt(opts)}, k=${b64uEncode(b64uDecode(opts.vapid.publicKey))}`;
}
