/**
 * A token bucket in an object's SQLite: `capacity` tokens, refilled continuously at
 * `capacity` per minute. Persisted, so eviction does not hand out a fresh bucket.
 */
export const RATE_LIMIT_SCHEMA = `
  CREATE TABLE rate_buckets (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_at INTEGER NOT NULL);`;

export type TakeResult = { ok: true } | { ok: false; retryAfterSeconds: number };

/** A bucket's state: tokens left at `at` (ms). */
export interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Takes `cost` tokens from a bucket of `perMinute` refilled at `perMinute` per minute (a
 * cost above the capacity is capped to it); answers the outcome and the bucket's new state.
 */
export function takeFrom(bucket: Bucket | null | undefined, perMinute: number, now = Date.now(), cost = 1): { result: TakeResult; bucket: Bucket } {
  const perMs = perMinute / 60_000;
  const need = Math.min(cost, perMinute);
  const tokens = Math.min(perMinute, bucket ? bucket.tokens + Math.max(0, now - bucket.at) * perMs : perMinute);
  if (tokens < need) {
    return { result: { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((need - tokens) / perMs / 1000)) }, bucket: { tokens, at: now } };
  }
  return { result: { ok: true }, bucket: { tokens: tokens - need, at: now } };
}

export function takeToken(sql: SqlStorage, name: string, perMinute: number, now = Date.now(), cost = 1): TakeResult {
  const row = sql
    .exec<{ tokens: number; updated_at: number }>("SELECT tokens, updated_at FROM rate_buckets WHERE name = ?", name)
    .toArray()[0];
  const { result, bucket } = takeFrom(row ? { tokens: row.tokens, at: row.updated_at } : null, perMinute, now, cost);
  sql.exec("INSERT OR REPLACE INTO rate_buckets (name, tokens, updated_at) VALUES (?, ?, ?)", name, bucket.tokens, bucket.at);
  return result;
}

/** Gives `count` tokens back (up to the capacity), e.g. for an attempt that turned out not to count. */
export function refundToken(sql: SqlStorage, name: string, perMinute: number, count = 1): void {
  sql.exec("UPDATE rate_buckets SET tokens = min(?, tokens + ?) WHERE name = ?", perMinute, count, name);
}
