/**
 * The Conversation object's side of lazy presence: while it has open sockets it watches
 * its members' inboxes and caches what they report, so a socket that opens is told every
 * member's presence without asking them all again.
 */
import { inboxStub } from "../shared/stubs";
import type { Presence, PresenceFrame } from "../protocol";

interface CacheRow extends Record<string, SqlStorageValue> {
  user_id: string;
  status: Presence["status"];
  last_seen: number | null;
}

const PARALLEL = 16;

export class PresenceWatch {
  private subscribing: Promise<PresenceFrame[]> | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly env: Env,
  ) {}

  /** Subscribes to the presence of members not yet watched; answers what that added. */
  ensure(conversationId: string, members: string[]): Promise<PresenceFrame[]> {
    // Sockets opening together share one round of subscriptions.
    this.subscribing ??= this.subscribe(conversationId, members).finally(() => {
      this.subscribing = null;
    });
    return this.subscribing;
  }

  /** Every cached member's presence, as frames. */
  frames(members: string[]): PresenceFrame[] {
    const wanted = new Set(members);
    return this.rows()
      .filter((r) => wanted.has(r.user_id))
      .map((r) => frame(r.user_id, { status: r.status, last_seen: r.last_seen }));
  }

  update(userId: string, presence: Presence): PresenceFrame {
    this.sql.exec(
      "INSERT OR REPLACE INTO presence_cache (user_id, status, last_seen) VALUES (?, ?, ?)",
      userId,
      presence.status,
      presence.last_seen,
    );
    return frame(userId, presence);
  }

  forget(userId?: string): void {
    if (userId === undefined) this.sql.exec("DELETE FROM presence_cache");
    else this.sql.exec("DELETE FROM presence_cache WHERE user_id = ?", userId);
  }

  private rows(): CacheRow[] {
    return this.sql.exec<CacheRow>("SELECT * FROM presence_cache").toArray();
  }

  private async subscribe(conversationId: string, members: string[]): Promise<PresenceFrame[]> {
    const cached = new Set(this.rows().map((r) => r.user_id));
    const missing = members.filter((m) => !cached.has(m));
    const added: PresenceFrame[] = [];
    for (let i = 0; i < missing.length; i += PARALLEL) {
      await Promise.all(
        missing.slice(i, i + PARALLEL).map(async (userId) => {
          try {
            const inbox = inboxStub(this.env, userId);
            added.push(this.update(userId, await inbox.watchPresence(conversationId)));
          } catch (err) {
            console.warn(`presence watch of ${userId} failed`, err);
          }
        }),
      );
    }
    return added;
  }
}

const frame = (userId: string, p: Presence): PresenceFrame => ({ type: "presence", user_id: userId, status: p.status, last_seen: p.last_seen });
