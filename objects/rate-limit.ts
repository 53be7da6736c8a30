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

/** A lease of `granted` tokens (at least one), or the bucket's refusal. */
export type LeaseResult = { ok: true; granted: number } | { ok: false; retryAfterSeconds: number };

/**
 * Takes up to `want` tokens at once, after giving back `giveBack` unspent ones. Only the
 * top quarter of the bucket is handed out in blocks: below it every token is taken singly,
 * so a lease left unspent elsewhere can only strand tokens of a user far from the limit,
 * never the last ones they are owed.
 */
export function leaseTokens(sql: SqlStorage, name: string, perMinute: number, want: number, giveBack = 0, now = Date.now()): LeaseResult {
  if (giveBack > 0) refundToken(sql, name, perMinute, giveBack);
  const row = sql
    .exec<{ tokens: number; updated_at: number }>("SELECT tokens, updated_at FROM rate_buckets WHERE name = ?", name)
    .toArray()[0];
  const bucket = row ? { tokens: row.tokens, at: row.updated_at } : null;
  const available = takeFrom(bucket, perMinute, now, 0).bucket.tokens;
  const granted = Math.max(1, Math.min(Math.floor(want), Math.floor(available - (perMinute * 3) / 4)));
  const { result, bucket: after } = takeFrom(bucket, perMinute, now, granted);
  sql.exec("INSERT OR REPLACE INTO rate_buckets (name, tokens, updated_at) VALUES (?, ?, ?)", name, after.tokens, after.at);
  return result.ok ? { ok: true, granted } : result;
}
