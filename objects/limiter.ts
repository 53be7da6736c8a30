/**
 * One small Durable Object per rate-limit bucket (addressed by the bucket's name, e.g.
 * `login:handle:alice` or `register:addr:203.0.113.7`): the Worker's limits that belong
 * to no user's Inbox — failed logins per handle and per client address, registrations per
 * address — and the per-user look-up, conversation and member limits. A bucket that has
 * refilled completely is deleted by the object's alarm, so idle buckets cost no storage.
 */
import { DurableObject } from "cloudflare:workers";
import { RATE_LIMIT_SCHEMA, refundToken, takeToken, type TakeResult } from "./rate-limit";
import { AlarmScheduler } from "./scheduler";
import { migrate } from "./migrate";

const BUCKET = "bucket";
/** A bucket untouched this long has refilled completely (capacities are per minute). */
const FULL_AFTER_MS = 60_000;

export class Limiter extends DurableObject<Env> {
  private ready = false;
  private readonly alarms = new AlarmScheduler(this.ctx.storage);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.alarms.register("forget", (now) => this.forgetIfFull(now));
  }

  private get sql(): SqlStorage {
    if (!this.ready) migrate(this.ctx.storage.sql, [RATE_LIMIT_SCHEMA]);
    this.ready = true;
    return this.ctx.storage.sql;
  }

  /** Takes `cost` tokens from a bucket of `perMinute`, refilled continuously. */
  async take(perMinute: number, cost = 1): Promise<TakeResult> {
    const result = takeToken(this.sql, BUCKET, perMinute, Date.now(), cost);
    // Full again at most a minute after the last take: the alarm forgets it then. A wake-up
    // already set stays (no storage write per take); if it comes early it is pushed back.
    await this.alarms.wakeAt(Date.now() + FULL_AFTER_MS);
    return result;
  }

  /** Gives tokens back: an attempt that was taken up front but does not count (a login that succeeded). */
  async refund(perMinute: number, count = 1): Promise<void> {
    refundToken(this.sql, BUCKET, perMinute, count);
  }

  override async alarm(): Promise<void> {
    await this.alarms.fire();
  }

  /** Deletes the bucket once a minute has passed since its last take; otherwise answers when that will be. */
  private async forgetIfFull(now: number): Promise<number | null> {
    const row = this.sql.exec<{ updated_at: number }>("SELECT updated_at FROM rate_buckets WHERE name = ?", BUCKET).toArray()[0];
    if (row && now < row.updated_at + FULL_AFTER_MS) return row.updated_at + FULL_AFTER_MS;
    await this.ctx.storage.deleteAll();
    this.ready = false;
    return null;
  }
}
