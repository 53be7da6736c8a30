/**
 * Web Push building block: VAPID keys (RFC 8292), payload encryption (RFC 8291, `aes128gcm`),
 * and the push message request (RFC 8030), with WebCrypto only so it runs in workerd, Node ≥ 20
 * and browsers alike. It only builds requests; sending, retrying and deleting dead
 * subscriptions are the caller's (see `pushOutcome`).
 *
 *     const keys = await generateVapidKeys();        // once; keep privateKey secret
 *     const req = await buildPushRequest({
 *       subscription,                                 // the browser's PushSubscription JSON
 *       payload: JSON.stringify({ conversation_id, seq }),
 *       vapid: { ...keys, subject: "mailto:ops@example.com" },
 *       ttlSeconds: 86400,
 *     });
 *     const res = await fetch(req);
 *     switch (pushOutcome(res).kind) { ... }
 */
import { isAllowedEndpoint, type EndpointPolicy } from "./endpoint";
import { encryptAes128gcm, importSubscriptionKeys, type SubscriptionKeys } from "./encrypt";
import { WebPushError } from "./errors";
import { vapidAuthorization, type VapidConfig } from "./vapid";

export { DEFAULT_PUSH_HOSTS, isAllowedEndpoint, isLoopbackHost, type EndpointPolicy } from "./endpoint";
export { encryptAes128gcm, MAX_PLAINTEXT, RECORD_SIZE, type SubscriptionKeys } from "./encrypt";
export { WebPushError } from "./errors";
export {
  createVapidJwt,
  DEFAULT_JWT_LIFETIME_SECONDS,
  generateVapidKeys,
  isValidVapidSubject,
  MAX_JWT_LIFETIME_SECONDS,
  vapidAuthorization,
  type VapidConfig,
  type VapidKeys,
} from "./vapid";
export { b64uDecode, b64uEncode } from "./bytes";

/** A browser's `PushSubscription.toJSON()`, the parts we use. */
export interface PushSubscriptionJSON {
  endpoint: string;
  keys: SubscriptionKeys;
}

export type Urgency = "very-low" | "low" | "normal" | "high";
const URGENCIES: readonly string[] = ["very-low", "low", "normal", "high"];

export interface BuildPushRequestOptions {
  subscription: PushSubscriptionJSON;
  /** The message; a string is sent as UTF-8. At most `MAX_PLAINTEXT` (3993) bytes with `padding`. */
  payload: Uint8Array | string;
  vapid: VapidConfig;
  /** How long the push service should keep the message for an offline device (RFC 8030 §5.2). */
  ttlSeconds: number;
  /** RFC 8030 §5.3. Omitted means the service's default, `normal`. */
  urgency?: Urgency;
  /** RFC 8030 §5.4: a newer message with the same topic replaces an undelivered older one. ≤ 32 base64url characters. */
  topic?: string;
  /** Accept `http:` endpoints on loopback addresses (local testing only). Default false. */
  allowLoopbackHttp?: boolean;
  /** The push services' hosts an endpoint may name (see EndpointPolicy); absent: any host name. */
  hosts?: readonly string[];
  /** Extra zero octets of encrypted padding, to hide the payload's length. Default 0. */
  padding?: number;
  /** The current time in ms since the epoch, for the JWT's `exp`. Default `Date.now()`. */
  now?: number;
}

/**
 * The push message request for one subscription, ready for `fetch`: `POST <endpoint>` with the
 * encrypted body and the `Content-Encoding`, `Content-Type`, `TTL`, `Authorization` (VAPID),
 * and optional `Urgency` / `Topic` headers. A fresh salt and ephemeral key are used each call.
 * Throws `WebPushError` for a bad endpoint, subscription key, VAPID configuration, option or
 * an oversized payload.
 */
export async function buildPushRequest(opts: BuildPushRequestOptions): Promise<Request> {
  const { subscription } = opts;
  if (typeof subscription?.endpoint !== "string" || !isAllowedEndpoint(subscription.endpoint, { allowLoopbackHttp: opts.allowLoopbackHttp === true, hosts: opts.hosts })) {
    throw new WebPushError("push endpoint must be an https: URL of a known push service (or http: on loopback when allowed)");
  }
  if (!Number.isInteger(opts.ttlSeconds) || opts.ttlSeconds < 0) throw new WebPushError("ttlSeconds must be a non-negative integer");
  if (opts.urgency !== undefined && !URGENCIES.includes(opts.urgency)) throw new WebPushError("urgency must be very-low, low, normal or high");
  if (opts.topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(opts.topic)) throw new WebPushError("topic must be 1–32 base64url characters");

  const plaintext = typeof opts.payload === "string" ? new TextEncoder().encode(opts.payload) : opts.payload;
  const body = await encryptAes128gcm({ keys: subscription.keys, plaintext, padding: opts.padding });
  const authorization = await vapidAuthorization({ vapid: opts.vapid, audience: new URL(subscription.endpoint).origin, now: opts.now });

  const headers = new Headers({
    "Content-Encoding": "aes128gcm",
    "Content-Type": "application/octet-stream",
    TTL: String(opts.ttlSeconds),
    Authorization: authorization,
  });
  if (opts.urgency !== undefined) headers.set("Urgency", opts.urgency);
  if (opts.topic !== undefined) headers.set("Topic", opts.topic);
  return new Request(subscription.endpoint, { method: "POST", headers, body });
}

/**
 * Checks an untrusted PushSubscription JSON (as posted by a client) and returns the parts we
 * keep. Throws `WebPushError` saying what is wrong: a disallowed endpoint, or keys that are
 * not a P-256 point and a 16-byte secret.
 */
export async function parseSubscription(input: unknown, policy: EndpointPolicy = {}): Promise<PushSubscriptionJSON> {
  const o = input as { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } } | null;
  if (typeof o !== "object" || o === null || typeof o.endpoint !== "string" || typeof o.keys !== "object" || o.keys === null) {
    throw new WebPushError("a push subscription is {endpoint, keys: {p256dh, auth}}");
  }
  const { p256dh, auth } = o.keys;
  if (typeof p256dh !== "string" || typeof auth !== "string") throw new WebPushError("push subscription keys p256dh and auth must be strings");
  if (o.endpoint.length > 2048 || !isAllowedEndpoint(o.endpoint, policy)) {
    throw new WebPushError("push endpoint must be an https: URL of a known push service (or http: on loopback when allowed)");
  }
  await importSubscriptionKeys({ p256dh, auth });
  return { endpoint: o.endpoint, keys: { p256dh, auth } };
}

export type PushOutcome =
  /** 2xx: the push service accepted the message. */
  | { kind: "delivered" }
  /** 404 or 410: the subscription is dead; delete it (contract §8). */
  | { kind: "gone" }
  /** 429 or 5xx: try again later; `retryAfterSeconds` if the service said (Retry-After). */
  | { kind: "retry"; retryAfterSeconds?: number }
  /** Any other status (400, 401/403 VAPID rejected, 413 too large, ...): retrying the same request will not help; drop it. */
  | { kind: "rejected"; status: number };

/** What a push service's response means for the caller. */
export function pushOutcome(res: { status: number; headers: Headers }): PushOutcome {
  const { status } = res;
  if (status >= 200 && status < 300) return { kind: "delivered" };
  if (status === 404 || status === 410) return { kind: "gone" };
  if (status === 429 || status >= 500) {
    const ra = res.headers.get("Retry-After");
    if (ra !== null) {
      const secs = /^\d+$/.test(ra.trim()) ? Number(ra.trim()) : Math.ceil((Date.parse(ra) - Date.now()) / 1000);
      if (Number.isFinite(secs)) return { kind: "retry", retryAfterSeconds: Math.max(0, secs) };
    }
    return { kind: "retry" };
  }
  return { kind: "rejected", status };
}
