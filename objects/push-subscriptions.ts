/**
 * Web Push subscriptions, one per device, kept in the user's Inbox object, and the jobs
 * the Inbox puts on the push queue for devices that have no device socket open.
 */
import type { PushPayload, PushSubscriptionBody } from "../protocol";
import type { AlarmScheduler } from "./scheduler";

export const PUSH_SCHEMA = `
  CREATE TABLE push_subscriptions (
    device_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, p256dh TEXT NOT NULL, auth TEXT NOT NULL,
    created_at INTEGER NOT NULL);`;

/**
 * Jobs written in the same transaction as the events that caused them, and removed once
 * the queue took them: a queue outage delays pushes but never message delivery.
 */
export const PUSH_OUTBOX_SCHEMA = `
  CREATE TABLE push_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL);`;

/** Cloudflare Queues take at most 100 messages (and 256 KB) per sendBatch. */
const QUEUE_BATCH = 50;
const RETRY_MS = 5_000;

/** One notification for one device: never the content, only where to fetch it from. */
export interface PushJob {
  userId: string;
  deviceId: string;
  subscription: PushSubscriptionBody;
  payload: PushPayload;
}

interface Row extends Record<string, SqlStorageValue> {
  device_id: string;
  endpoint: string;
  p256dh: string;
  auth: string;
}

export class PushSubscriptions {
  private flushing: Promise<void> | null = null;
  /** True once a read found no subscription, until one is put: every batch of messages asks. */
  private none: boolean | null = null;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly queue: Queue,
    private readonly alarms: AlarmScheduler,
  ) {}

  private get sql() {
    return this.ctx.storage.sql;
  }

  put(deviceId: string, sub: PushSubscriptionBody): void {
    this.none = false;
    this.sql.exec(
      "INSERT OR REPLACE INTO push_subscriptions (device_id, endpoint, p256dh, auth, created_at) VALUES (?, ?, ?, ?, ?)",
      deviceId,
      sub.endpoint,
      sub.keys.p256dh,
      sub.keys.auth,
      Date.now(),
    );
  }

  /** Deletes the device's subscription; with `endpoint`, only if it is still that one (a 404/410 answer). */
  delete(deviceId: string, endpoint?: string): boolean {
    const result =
      endpoint === undefined
        ? this.sql.exec("DELETE FROM push_subscriptions WHERE device_id = ?", deviceId)
        : this.sql.exec("DELETE FROM push_subscriptions WHERE device_id = ? AND endpoint = ?", deviceId, endpoint);
    return result.rowsWritten > 0;
  }

  /** Records jobs for the queue; call inside the transaction that applies their events. */
  stage(jobs: PushJob[]): void {
    for (const job of jobs) this.sql.exec("INSERT INTO push_outbox (job) VALUES (?)", JSON.stringify(job));
  }

  /** Hands staged jobs to the queue; if it fails, the object's alarm tries again. */
  flush(): Promise<void> {
    this.flushing ??= this.flushNow().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async flushNow(): Promise<void> {
    for (;;) {
      const rows = this.sql.exec<{ id: number; job: string }>("SELECT id, job FROM push_outbox ORDER BY id LIMIT ?", QUEUE_BATCH).toArray();
      if (rows.length === 0) return;
      try {
        await this.queue.sendBatch(rows.map((r) => ({ body: JSON.parse(r.job) as PushJob })));
      } catch (err) {
        console.warn("push queue unavailable; will retry", err);
        const retryAt = Date.now() + RETRY_MS;
        await this.alarms.wakeAt(retryAt);
        return;
      }
      this.sql.exec("DELETE FROM push_outbox WHERE id <= ?", rows.at(-1)!.id);
    }
  }

  /** Whether a read found no subscription and none was put since (so `jobsFor` would find none). */
  knownEmpty(): boolean {
    return this.none === true;
  }

  /** Jobs for a message, for every subscribed device not in `online`. */
  jobsFor(userId: string, online: Set<string>, payload: PushJob["payload"]): PushJob[] {
    if (this.none) return [];
    const rows = this.sql.exec<Row>("SELECT * FROM push_subscriptions").toArray();
    this.none = rows.length === 0;
    return rows
      .filter((r) => !online.has(r.device_id))
      .map((r) => ({
        userId,
        deviceId: r.device_id,
        subscription: { endpoint: r.endpoint, keys: { p256dh: r.p256dh, auth: r.auth } },
        payload,
      }));
  }
}
