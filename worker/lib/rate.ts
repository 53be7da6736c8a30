/** The Worker's rate limits (CONTRACT.md section 17), each a token bucket in a Limiter object. */
import type { TakeResult } from "../../objects/rate-limit";
import { ApiError } from "../errors";

const limiter = (env: Env, bucket: string) => env.LIMITER.get(env.LIMITER.idFromName(bucket));

/**
 * The client's address as Cloudflare reports it (`CF-Connecting-IP`; the local server sets
 * it too), "loopback" when there is none. IPv6 clients are counted per /64, which one
 * subscriber usually holds whole.
 */
export function clientAddress(request: Request): string {
  const ip = request.headers.get("cf-connecting-ip")?.trim().toLowerCase();
  if (!ip) return "loopback";
  if (!ip.includes(":")) return ip;
  const [head = "", tail = ""] = ip.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

export const rateLimited = (what: string, result: Extract<TakeResult, { ok: false }>) =>
  new ApiError("rate_limited", `too many ${what}; try again in ${result.retryAfterSeconds} s`, result.retryAfterSeconds);

/** Takes `cost` tokens from each bucket (all are charged), or throws 429 with the longest wait. */
export async function limit(env: Env, what: string, perMinute: number, buckets: string[], cost = 1): Promise<void> {
  const results = await Promise.all(buckets.map((b) => limiter(env, b).take(perMinute, cost)));
  const refused = results.filter((r): r is Extract<TakeResult, { ok: false }> => !r.ok);
  if (refused.length === 0) return;
  throw rateLimited(what, refused.reduce((a, b) => (a.retryAfterSeconds >= b.retryAfterSeconds ? a : b)));
}

/** Gives a token back to each bucket (an attempt that turned out not to count). */
export async function refund(env: Env, perMinute: number, buckets: string[]): Promise<void> {
  await Promise.all(buckets.map((b) => limiter(env, b).refund(perMinute)));
}
