/**
 * A user's presence, kept by their Inbox object (CONTRACT.md section 7).
 *
 * Online while any device socket is open. When the last one closes, offline is only
 * declared after a grace period, by the object's alarm: a device that reconnects within
 * it causes no offline/online pair, and no timer keeps the object awake meanwhile.
 *
 * Presence is lazy: it goes only to conversations that asked for it (`watch`) because a
 * conversation socket is open there, and a conversation that no longer has open sockets
 * says so and is dropped.
 */
import type { Presence } from "../protocol";
import { conversationStub } from "../shared/stubs";
import type { AlarmScheduler } from "./scheduler";

export const PRESENCE_GRACE_MS = 5_000;

export const PRESENCE_SCHEMA = `
  CREATE TABLE presence (
    id INTEGER PRIMARY KEY CHECK (id = 1), user_id TEXT, status TEXT NOT NULL DEFAULT 'offline',
    last_seen INTEGER, closed_at INTEGER, offline_due INTEGER);
  INSERT INTO presence (id) VALUES (1);
  CREATE TABLE watchers (conversation_id TEXT PRIMARY KEY);`;

interface PresenceRow extends Record<string, SqlStorageValue> {
  user_id: string | null;
  status: "online" | "offline";
  last_seen: number | null;
  closed_at: number | null;
  offline_due: number | null;
}

export class PresenceTracker {
  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
    private readonly alarms: AlarmScheduler,
  ) {}

  private get sql() {
    return this.ctx.storage.sql;
  }

  private row(): PresenceRow {
    return this.sql.exec<PresenceRow>("SELECT * FROM presence").one();
  }

  current(): Presence {
    const row = this.row();
    return { status: row.status, last_seen: row.last_seen };
  }

  /** A conversation with open sockets asks to be told of changes; answers the presence now. */
  watch(conversationId: string): Presence {
    this.sql.exec("INSERT OR IGNORE INTO watchers (conversation_id) VALUES (?)", conversationId);
    return this.current();
  }

  /** A device socket opened: cancels a pending offline, or goes online. */
  async deviceOpened(userId: string): Promise<void> {
    const row = this.row();
    this.sql.exec("UPDATE presence SET user_id = ?, offline_due = NULL, status = 'online'", userId);
    if (row.status !== "online") await this.notify(userId);
  }

  /** A device socket closed; `stillOpen` counts the user's other open device sockets. */
  async deviceClosed(stillOpen: number): Promise<void> {
    if (stillOpen > 0) return;
    const now = Date.now();
    const due = now + PRESENCE_GRACE_MS;
    this.sql.exec("UPDATE presence SET closed_at = ?, offline_due = ?", now, due);
    await this.alarms.wakeAt(due);
  }

  /** From the alarm: declares offline if the grace period passed with no device back; answers when it is due if not yet. */
  async onAlarm(openSockets: number, now: number): Promise<number | null> {
    const row = this.row();
    if (row.offline_due === null) return null;
    if (openSockets > 0) {
      this.sql.exec("UPDATE presence SET offline_due = NULL");
      return null;
    }
    if (now < row.offline_due) return row.offline_due;
    this.sql.exec("UPDATE presence SET status = 'offline', last_seen = closed_at, offline_due = NULL");
    if (row.user_id) await this.notify(row.user_id);
    return null;
  }

  /** Who may see the user changed (section 17): every watching conversation re-checks its viewers. */
  async policyChanged(userId: string): Promise<void> {
    const watchers = this.sql.exec<{ conversation_id: string }>("SELECT conversation_id FROM watchers").toArray();
    await Promise.allSettled(
      watchers.map(({ conversation_id }) =>
        conversationStub(this.env, conversation_id).presencePolicyChanged(userId),
      ),
    );
  }

  /** Tells every watching conversation; those without open sockets any more are dropped. */
  private async notify(userId: string): Promise<void> {
    const presence = this.current();
    const watchers = this.sql.exec<{ conversation_id: string }>("SELECT conversation_id FROM watchers").toArray();
    await Promise.all(
      watchers.map(async ({ conversation_id }) => {
        try {
          const stub = conversationStub(this.env, conversation_id);
          if (!(await stub.presenceChanged(userId, presence))) {
            this.sql.exec("DELETE FROM watchers WHERE conversation_id = ?", conversation_id);
          }
        } catch (err) {
          console.warn(`presence to ${conversation_id} failed`, err);
        }
      }),
    );
  }
}
