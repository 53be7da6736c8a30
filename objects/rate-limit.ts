/**
 * A token bucket in an object's SQLite: `capacity` tokens, refilled continuously at
 * `capacity` per minute. Persisted, so eviction does not hand out a fresh bucket.
 */
export const RATE_LIMIT_SCHEMA = `
  CREATE TABLE rate_buckets (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_at INTEGER NOT NULL);`;

export type TakeResult = { ok: true } | { ok: false; retryAfterSeconds: number };

export function takeToken(sql: SqlStorage, name: string, perMinute: number, now = Date.now()): TakeResult {
  const perMs = perMinute / 60_000;
  const row = sql
    .exec<{ tokens: number; updated_at: number }>("SELECT tokens, updated_at FROM rate_buckets WHERE name = ?", name)
    .toArray()[0];
  const tokens = Math.min(perMinute, row ? row.tokens + Math.max(0, now - row.updated_at) * perMs : perMinute);
  if (tokens < 1) {
    sql.exec("INSERT OR REPLACE INTO rate_buckets (name, tokens, updated_at) VALUES (?, ?, ?)", name, tokens, now);
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / perMs / 1000)) };
  }
  sql.exec("INSERT OR REPLACE INTO rate_buckets (name, tokens, updated_at) VALUES (?, ?, ?)", name, tokens - 1, now);
  return { ok: true };
}
