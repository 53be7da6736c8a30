/**
 * The Conversation object's SQLite: its members, its messages (the one order, `seq`),
 * its read/delivered markers, and the feed of events it owes to members' inboxes.
 *
 * The feed is what makes fan-out lossless: a message row and its feed row are written
 * in one transaction, and each member row records how far into the feed that member's
 * inbox has confirmed (`fed_upto`). Whatever lies beyond is still owed, across crashes.
 */
import type { Conversation as ConversationShape, Encryption, FeedEvent, Member, Message, ReceiptKind, Role, StoredMessageKind } from "../protocol";
import { SERVER_MESSAGE_KINDS } from "../protocol";
import { MLS_SCHEMA } from "./mls-store";

export const CONVERSATION_SCHEMA = [
  `CREATE TABLE info (
     id TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT, created_by TEXT NOT NULL,
     created_at INTEGER NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0);
   CREATE TABLE members (
     user_id TEXT PRIMARY KEY, role TEXT NOT NULL, joined_at INTEGER NOT NULL,
     active INTEGER NOT NULL DEFAULT 1,
     read_seq INTEGER NOT NULL DEFAULT 0, delivered_seq INTEGER NOT NULL DEFAULT 0,
     fed_upto INTEGER NOT NULL DEFAULT 0, feed_end INTEGER);
   CREATE TABLE device_markers (device_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, delivered_seq INTEGER NOT NULL);
   CREATE TABLE messages (
     seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL, sender_id TEXT NOT NULL, sender_device_id TEXT NOT NULL,
     client_message_id TEXT NOT NULL, kind TEXT NOT NULL, content TEXT NOT NULL, media_id TEXT,
     created_at INTEGER NOT NULL);
   CREATE UNIQUE INDEX messages_idempotency ON messages (sender_id, client_message_id);
   CREATE TABLE feed (
     id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, seq INTEGER, only_user TEXT, payload TEXT);
   CREATE TABLE revoked_devices (device_id TEXT PRIMARY KEY);`,
  // Members' presence while this conversation has open sockets and so watches it.
  `CREATE TABLE presence_cache (user_id TEXT PRIMARY KEY, status TEXT NOT NULL, last_seen INTEGER);`,
  // Section 10: "mls" conversations take only encrypted messages and commits (objects/mls-store.ts).
  `ALTER TABLE info ADD COLUMN encryption TEXT NOT NULL DEFAULT 'none';`,
  ...MLS_SCHEMA,
] as const;

interface InfoRow extends Record<string, SqlStorageValue> {
  id: string;
  type: "direct" | "group";
  name: string | null;
  created_by: string;
  created_at: number;
  last_seq: number;
  encryption: Encryption;
}

interface MemberRow extends Record<string, SqlStorageValue> {
  user_id: string;
  role: Role;
  joined_at: number;
  active: number;
  read_seq: number;
  delivered_seq: number;
  fed_upto: number;
  feed_end: number | null;
}

interface MessageRow extends Record<string, SqlStorageValue> {
  seq: number;
  message_id: string;
  sender_id: string;
  sender_device_id: string;
  client_message_id: string;
  kind: StoredMessageKind;
  content: string;
  media_id: string | null;
  created_at: number;
}

type FeedRow = MessageRow & { feed_id: number; feed_type: FeedEvent["type"]; payload: string | null; only_user: string | null };

/** One event owed to one inbox, with its position in the conversation's feed. */
export interface OwedEvent {
  feedId: number;
  event: FeedEvent;
}

/** A feed entry as read for every member: `onlyUser` names the one member it is for, if any. */
export interface FeedEntry extends OwedEvent {
  onlyUser: string | null;
}

/**
 * One member's events among `entries` (read with `limit` up to `end`), and the position
 * confirming them reaches: the last entry read when the read was cut by the limit.
 */
export function eventsFor(userId: string, entries: FeedEntry[], end: number, limit: number): { events: OwedEvent[]; upto: number } {
  const events = entries.filter((e) => e.onlyUser === null || e.onlyUser === userId).map(({ feedId, event }) => ({ feedId, event }));
  return { events, upto: entries.length === limit ? entries[entries.length - 1]!.feedId : end };
}

/** Whether `migrate` ever ran in this object's storage. */
export const hasSchema = (sql: SqlStorage): boolean =>
  sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_schema'").toArray().length > 0;

export class ConversationStore {
  private conversationId: string | null = null;

  constructor(private readonly sql: SqlStorage) {}

  /** The conversation's id, read once. */
  id(): string {
    return (this.conversationId ??= this.info()!.id);
  }

  /** Null too in an object that never held a conversation: it has no tables at all. */
  info(): InfoRow | null {
    if (!this.hasTables()) return null;
    return this.sql.exec<InfoRow>("SELECT * FROM info").toArray()[0] ?? null;
  }

  private present = false;
  /** Whether a conversation is stored here: once one is, it stays (nothing deletes it), so this is asked once. */
  exists(): boolean {
    this.present ||= this.info() !== null;
    return this.present;
  }

  private encryptionMode: Encryption | null = null;
  /** Fixed when the conversation is created. */
  encryption(): Encryption {
    return (this.encryptionMode ??= this.info()!.encryption);
  }

  private tables = false;
  /** Whether the schema was ever created here (it only is when a conversation is). */
  hasTables(): boolean {
    this.tables ||= hasSchema(this.sql);
    return this.tables;
  }

  createInfo(row: Omit<InfoRow, "last_seq">): void {
    this.sql.exec(
      "INSERT INTO info (id, type, name, created_by, created_at, encryption) VALUES (?, ?, ?, ?, ?, ?)",
      row.id,
      row.type,
      row.name,
      row.created_by,
      row.created_at,
      row.encryption,
    );
  }

  // ---- members ---------------------------------------------------------------

  member(userId: string): MemberRow | null {
    return this.sql.exec<MemberRow>("SELECT * FROM members WHERE user_id = ?", userId).toArray()[0] ?? null;
  }

  activeMember(userId: string): MemberRow | null {
    const m = this.member(userId);
    return m && m.active ? m : null;
  }

  activeMembers(): MemberRow[] {
    return this.sql.exec<MemberRow>("SELECT * FROM members WHERE active = 1 ORDER BY joined_at, user_id").toArray();
  }

  /** Adds or re-activates a member; they are owed the feed from its current end on. */
  upsertMember(userId: string, role: Role, now: number): void {
    const feedEnd = this.lastFeedId();
    this.sql.exec(
      `INSERT INTO members (user_id, role, joined_at, active, fed_upto, feed_end) VALUES (?, ?, ?, 1, ?, NULL)
       ON CONFLICT (user_id) DO UPDATE SET role = excluded.role, joined_at = excluded.joined_at, active = 1,
         fed_upto = max(members.fed_upto, excluded.fed_upto), feed_end = NULL`,
      userId,
      role,
      now,
      feedEnd,
    );
  }

  /** Deactivates a member; they are still owed the feed up to and including `feedEnd`. */
  deactivateMember(userId: string, feedEnd: number): void {
    this.sql.exec("UPDATE members SET active = 0, feed_end = ? WHERE user_id = ?", feedEnd, userId);
  }

  setRole(userId: string, role: Role): void {
    this.sql.exec("UPDATE members SET role = ? WHERE user_id = ?", role, userId);
  }

  snapshot(): ConversationShape {
    const info = this.info()!;
    const members: Member[] = this.activeMembers().map((m) => ({ user_id: m.user_id, role: m.role }));
    return { conversation_id: info.id, type: info.type, name: info.name, members, encryption: info.encryption, created_at: info.created_at };
  }

  // ---- messages --------------------------------------------------------------

  messageByClientId(senderId: string, clientMessageId: string): Message | null {
    const row = this.sql
      .exec<MessageRow>("SELECT * FROM messages WHERE sender_id = ? AND client_message_id = ?", senderId, clientMessageId)
      .toArray()[0];
    return row ? this.toMessage(row) : null;
  }

  /** Stores a message and its feed entry; `seq` is the next after the last, so there are no gaps. */
  appendMessage(m: Omit<Message, "seq" | "conversation_id">): Message {
    const seq = this.sql.exec<{ last_seq: number }>("UPDATE info SET last_seq = last_seq + 1 RETURNING last_seq").one().last_seq;
    this.sql.exec(
      `INSERT INTO messages (seq, message_id, sender_id, sender_device_id, client_message_id, kind, content, media_id, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      seq,
      m.message_id,
      m.sender_id,
      m.sender_device_id,
      m.client_message_id,
      m.kind,
      m.content,
      m.media_id ?? null,
      m.created_at,
    );
    this.sql.exec("INSERT INTO feed (type, seq) VALUES ('message', ?)", seq);
    return this.toMessage(this.sql.exec<MessageRow>("SELECT * FROM messages WHERE seq = ?", seq).one());
  }

  /**
   * What a member who joins now is told of the history before them; `own_seqs` also holds
   * the server's kinds (mls_commit, call), which never count as unread either.
   */
  joinedEvent(userId: string): Extract<FeedEvent, { type: "joined" }> {
    const info = this.info()!;
    const readSeq = this.member(userId)?.read_seq ?? 0;
    const uncounted = SERVER_MESSAGE_KINDS.map(() => "?").join(", ");
    const own = this.sql
      .exec<{ seq: number }>(
        `SELECT seq FROM messages WHERE (sender_id = ? OR kind IN (${uncounted})) AND seq > ? ORDER BY seq`,
        userId,
        ...SERVER_MESSAGE_KINDS,
        readSeq,
      )
      .toArray()
      .map((r) => r.seq);
    const last = this.sql.exec<MessageRow>("SELECT * FROM messages ORDER BY seq DESC LIMIT 1").toArray()[0];
    return { type: "joined", conversation_id: info.id, join_seq: info.last_seq, own_seqs: own, last_message: last ? this.toMessage(last) : null };
  }

  /** Up to `limit` messages in ascending order: after `after`, or just below `before`, or the newest. */
  history(opts: { after?: number; before?: number; limit: number }): Message[] {
    let rows: MessageRow[];
    if (opts.after !== undefined) {
      rows = this.sql.exec<MessageRow>("SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", opts.after, opts.limit).toArray();
    } else {
      const below = opts.before ?? Number.MAX_SAFE_INTEGER;
      rows = this.sql
        .exec<MessageRow>("SELECT * FROM messages WHERE seq < ? ORDER BY seq DESC LIMIT ?", below, opts.limit)
        .toArray()
        .reverse();
    }
    return rows.map((r) => this.toMessage(r));
  }

  private toMessage(r: MessageRow): Message {
    const m: Message = {
      message_id: r.message_id,
      conversation_id: this.id(),
      seq: r.seq,
      sender_id: r.sender_id,
      sender_device_id: r.sender_device_id,
      client_message_id: r.client_message_id,
      kind: r.kind,
      content: r.content,
      created_at: r.created_at,
    };
    if (r.media_id !== null) m.media_id = r.media_id;
    return m;
  }

  // ---- markers ---------------------------------------------------------------

  /** Moves the user's read marker forward; answers whether it moved. */
  advanceRead(userId: string, upTo: number): boolean {
    return this.sql.exec("UPDATE members SET read_seq = ? WHERE user_id = ? AND read_seq < ?", upTo, userId, upTo).rowsWritten > 0;
  }

  /**
   * Moves one device's delivered marker forward, and the user's (the highest of their
   * devices') with it; answers whether the user's marker moved.
   */
  advanceDelivered(userId: string, deviceId: string, upTo: number): boolean {
    this.sql.exec(
      `INSERT INTO device_markers (device_id, user_id, delivered_seq) VALUES (?, ?, ?)
       ON CONFLICT (device_id) DO UPDATE SET delivered_seq = max(delivered_seq, excluded.delivered_seq)`,
      deviceId,
      userId,
      upTo,
    );
    return (
      this.sql.exec("UPDATE members SET delivered_seq = ? WHERE user_id = ? AND delivered_seq < ?", upTo, userId, upTo)
        .rowsWritten > 0
    );
  }

  // ---- feed ------------------------------------------------------------------

  lastFeedId(): number {
    return this.sql.exec<{ id: number | null }>("SELECT max(id) AS id FROM feed").one().id ?? 0;
  }

  appendFeed(event: Exclude<FeedEvent, { type: "message" }>, onlyUser: string | null = null): number {
    this.sql.exec("INSERT INTO feed (type, only_user, payload) VALUES (?, ?, ?)", event.type, onlyUser, JSON.stringify(event));
    return this.lastFeedId();
  }

  /** Members whose inbox has not yet confirmed everything it is owed. */
  membersOwed(): MemberRow[] {
    const last = this.lastFeedId();
    return this.sql.exec<MemberRow>("SELECT * FROM members WHERE fed_upto < coalesce(feed_end, ?)", last).toArray();
  }

  /**
   * The next events owed to one member, at most `limit`, and the feed position that
   * confirming them reaches (past any entries meant for other members only).
   */
  owedTo(member: MemberRow, limit: number): { events: OwedEvent[]; upto: number } {
    const end = member.feed_end ?? this.lastFeedId();
    return eventsFor(member.user_id, this.feedAfter(member.fed_upto, end, limit), end, limit);
  }

  /**
   * Up to `limit` feed entries after `after` up to `end`, for every member: members at the
   * same position share one read and take their own with `eventsFor`.
   */
  feedAfter(after: number, end: number, limit: number): FeedEntry[] {
    return this.sql
      .exec<FeedRow>(
        `SELECT f.id AS feed_id, f.type AS feed_type, f.payload, f.only_user, m.* FROM feed f
         LEFT JOIN messages m ON f.type = 'message' AND m.seq = f.seq
         WHERE f.id > ? AND f.id <= ? ORDER BY f.id LIMIT ?`,
        after,
        end,
        limit,
      )
      .toArray()
      .map((r) => ({
        feedId: r.feed_id,
        onlyUser: r.only_user,
        event: r.feed_type === "message" ? { type: "message" as const, message: this.toMessage(r) } : (JSON.parse(r.payload!) as FeedEvent),
      }));
  }

  /** Confirms members' positions, in one statement (one per member cost more than the rows). */
  confirmFedAll(positions: Map<string, number>): void {
    if (positions.size === 0) return;
    this.sql.exec(
      `UPDATE members SET fed_upto = max(fed_upto, p.value) FROM json_each(?) AS p WHERE members.user_id = p.key`,
      JSON.stringify(Object.fromEntries(positions)),
    );
  }

  // ---- devices ---------------------------------------------------------------

  /** Revoked devices, read once: every frame on a socket asks. */
  private revoked: Set<string> | null = null;

  revokeDevice(deviceId: string): void {
    this.sql.exec("INSERT OR IGNORE INTO revoked_devices (device_id) VALUES (?)", deviceId);
    this.revoked?.add(deviceId);
  }

  isRevoked(deviceId: string): boolean {
    this.revoked ??= new Set(this.sql.exec<{ device_id: string }>("SELECT device_id FROM revoked_devices").toArray().map((r) => r.device_id));
    return this.revoked.has(deviceId);
  }
}

export type { MemberRow, ReceiptKind };
