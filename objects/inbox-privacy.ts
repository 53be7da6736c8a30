/** Section 17 in a user's Inbox: list entries that are requests, or hidden by a block. */
import type { FeedEvent } from "../protocol";

/** One migration step of the inbox. */
export const INBOX_PRIVACY_SCHEMA = `
  ALTER TABLE conversations ADD COLUMN earlier_hidden INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE conversations ADD COLUMN request INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE conversations ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;`;

/** The rows the conversation list shows: a blocked user's direct conversation is not one. */
export const LISTED = "removed = 0 AND hidden = 0 AND snapshot IS NOT NULL";

export function applyListFlags(sql: SqlStorage, conversationId: string, event: Extract<FeedEvent, { type: "list_flags" }>): void {
  if (event.request !== undefined) {
    sql.exec("UPDATE conversations SET request = ? WHERE conversation_id = ?", event.request ? 1 : 0, conversationId);
  }
  if (event.hidden !== undefined) {
    sql.exec("UPDATE conversations SET hidden = ? WHERE conversation_id = ?", event.hidden ? 1 : 0, conversationId);
  }
}
