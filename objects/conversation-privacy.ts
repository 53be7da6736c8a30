/**
 * Section 17 inside a Conversation object: what each member may see of the history, whether
 * they have sent here (their contact, once, in D1), and blocks in a direct conversation.
 */
import type { Message } from "../protocol";
import type { History } from "../protocol/privacy";

/**
 * One migration step. Members that were there before it keep seeing everything (join_seq 0);
 * `sent` starts at 0, so a contact made before it is recorded on its next message.
 */
export const CONVERSATION_PRIVACY_SCHEMA = `
  ALTER TABLE info ADD COLUMN history TEXT NOT NULL DEFAULT 'since_join';
  ALTER TABLE members ADD COLUMN join_seq INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE members ADD COLUMN sent INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE members ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;`;

/** The highest seq a member may not see: those up to it were sent before they (last) joined. */
export function historyFloor(history: History, member: { join_seq: number }): number {
  return history === "shared" ? 0 : member.join_seq;
}

/**
 * The one filter on what a member reads, applied where history pages are built: an
 * `after` page starts at the floor at the earliest, and nothing at or below it is kept.
 */
export function visiblePage<Q extends { after?: number }>(query: Q, floor: number): Q {
  return query.after !== undefined && query.after < floor ? { ...query, after: floor } : query;
}

export function visibleMessages(messages: Message[], floor: number): Message[] {
  return floor === 0 ? messages : messages.filter((m) => m.seq > floor);
}

export class ConversationPrivacy {
  constructor(private readonly sql: SqlStorage) {}

  markSent(userId: string): void {
    this.sql.exec("UPDATE members SET sent = 1 WHERE user_id = ?", userId);
  }

  setBlocked(userId: string, blocked: boolean): void {
    this.sql.exec("UPDATE members SET blocked = ? WHERE user_id = ?", blocked ? 1 : 0, userId);
  }
}
