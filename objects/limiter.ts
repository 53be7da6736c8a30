/**
 * One small Durable Object per rate-limit bucket (addressed by the bucket's name, e.g.
 * `login:handle:alice` or `register:addr:203.0.113.7`): the Worker's limits that belong
 * to no user's Inbox — failed logins per handle and per client address, registrations per
 * address — and the per-user look-up, conversation and member limits. A bucket that has
 * refilled completely is deleted by the object's alarm, so idle buckets cost no storage.
 */
import { DurableObject } from "cloudflare:workers";
import { RATE_LIMIT_SCHEMA, refundToken, takeToken, type TakeResult } from "./rate-limit";
import { migrate } from "./migrate";

const BUCKET = "bucket";

export class Limiter extends DurableObject<Env> {
  private ready = false;

  private get sql(): SqlStorage {
    if (!this.ready) migrate(this.ctx.storage.sql, [RATE_LIMIT_SCHEMA]);
    this.ready = true;
    return this.ctx.storage.sql;
  }

  /** Takes `cost` tokens from a bucket of `perMinute`, refilled continuously. */
  async take(perMinute: number, cost = 1): Promise<TakeResult> {
    const result = takeToken(this.sql, BUCKET, perMinute, Date.now(), cost);
    // Full again at most a minute after the last take: forget it then.
    await this.ctx.storage.setAlarm(Date.now() + 60_000);
    return result;
  }

  /** Gives tokens back: an attempt that was taken up front but does not count (a login that succeeded). */
  async refund(perMinute: number, count = 1): Promise<void> {
    refundToken(this.sql, BUCKET, perMinute, count);
  }

  override async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll();
    this.ready = false;
  }
}
