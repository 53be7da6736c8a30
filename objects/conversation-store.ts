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
import { MEDIA_SCHEMA } from "./media";
import { MLS_SCHEMA } from "./mls-store";
import { CONVERSATION_PRIVACY_SCHEMA } from "./conversation-privacy";
import type { History } from "../protocol/privacy";

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
  // Sections 13 and 14: a message's changes, and the history tiers (objects/history-tiers.ts):
  // the index of R2 segments, the idempotency keys of archived messages, the current state of
  // archived messages changed since (the overlay), segments owing a rewrite after a delete, and
  // segments written but not yet indexed (a crash in between leaves an object to account for).
  `ALTER TABLE messages ADD COLUMN edited_at INTEGER;
   ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE messages ADD COLUMN reactions TEXT;
   CREATE TABLE segments (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, key TEXT NOT NULL);
   CREATE TABLE archived_ids (
     sender_id TEXT NOT NULL, client_message_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
     PRIMARY KEY (sender_id, client_message_id)) WITHOUT ROWID;
   CREATE TABLE archived_changes (seq INTEGER PRIMARY KEY, message TEXT NOT NULL);
   CREATE TABLE segment_scrubs (first_seq INTEGER PRIMARY KEY, version INTEGER NOT NULL);
   CREATE TABLE segment_attempts (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, key TEXT NOT NULL);
   CREATE INDEX feed_joined ON feed (id) WHERE type = 'joined';`,
  // Section 9: uploads and media of this conversation (objects/media.ts).
  ...MEDIA_SCHEMA,
  CONVERSATION_PRIVACY_SCHEMA,
] as const;

interface InfoRow extends Record<string, SqlStorageValue> {
  id: string;
  type: "direct" | "group";
  name: string | null;
  created_by: string;
  created_at: number;
  last_seq: number;
  encryption: Encryption;
  history: History;
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
  /** The last seq when they (last) joined (section 17). */
  join_seq: number;
  /** Whether they have sent in this direct conversation (recorded once, as their contact in D1). */
  sent: number;
  /** Whether their peer in this direct conversation blocked them. */
  blocked: number;
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
  edited_at: number | null;
  deleted: number;
  reactions: string | null;
}

type FeedRow = MessageRow & { feed_id: number; feed_type: FeedEvent["type"]; feed_seq: number | null; payload: string | null; only_user: string | null };

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
/** No user id is empty: an entry for `NOBODY` is read past but delivered to no one. */
const NOBODY = "";

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
      "INSERT INTO info (id, type, name, created_by, created_at, encryption, history) VALUES (?, ?, ?, ?, ?, ?, ?)",
      row.id,
      row.type,
      row.name,
      row.created_by,
      row.created_at,
      row.encryption,
      row.history,
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

  /** Active members' ids, kept between membership changes (fan-out asks on every write). */
  private activeIds: string[] | null = null;

  activeMemberIds(): string[] {
    return (this.activeIds ??= this.sql.exec<{ user_id: string }>("SELECT user_id FROM members WHERE active = 1").toArray().map((r) => r.user_id));
  }

  activeMembers(): MemberRow[] {
    return this.sql.exec<MemberRow>("SELECT * FROM members WHERE active = 1 ORDER BY joined_at, user_id").toArray();
  }

  /** Adds or re-activates a member; they are owed the feed from its current end on, and see messages from now on. */
  upsertMember(userId: string, role: Role, now: number): void {
    this.activeIds = null;
    const feedEnd = this.lastFeedId();
    this.sql.exec(
      `INSERT INTO members (user_id, role, joined_at, active, fed_upto, feed_end, join_seq) VALUES (?, ?, ?, 1, ?, NULL, ?)
       ON CONFLICT (user_id) DO UPDATE SET role = excluded.role, joined_at = excluded.joined_at, active = 1,
         fed_upto = max(members.fed_upto, excluded.fed_upto), feed_end = NULL, join_seq = excluded.join_seq`,
      userId,
      role,
      now,
      feedEnd,
      this.info()!.last_seq,
    );
  }

  /** Deactivates a member; they are still owed the feed up to and including `feedEnd`. */
  deactivateMember(userId: string, feedEnd: number): void {
    this.activeIds = null;
    this.sql.exec("UPDATE members SET active = 0, feed_end = ? WHERE user_id = ?", feedEnd, userId);
  }

  setRole(userId: string, role: Role): void {
    this.sql.exec("UPDATE members SET role = ? WHERE user_id = ?", role, userId);
  }

  snapshot(): ConversationShape {
    const info = this.info()!;
    const members: Member[] = this.activeMembers().map((m) => ({ user_id: m.user_id, role: m.role }));
    return {
      conversation_id: info.id,
      type: info.type,
      name: info.name,
      members,
      encryption: info.encryption,
      history: info.history,
      created_at: info.created_at,
    };
  }

  // ---- messages --------------------------------------------------------------

  /** A message still in this object's own storage (the hot tier). */
  messageByClientId(senderId: string, clientMessageId: string): Message | null {
    const row = this.sql
      .exec<MessageRow>("SELECT * FROM messages WHERE sender_id = ? AND client_message_id = ?", senderId, clientMessageId)
      .toArray()[0];
    return row ? this.toMessage(row) : null;
  }

  /** The message at `seq` as it now is, if it is in the hot tier or the overlay of archived changes. */
  currentMessage(seq: number): Message | null {
    const row = this.sql.exec<MessageRow>("SELECT * FROM messages WHERE seq = ?", seq).toArray()[0];
    if (row) return this.toMessage(row);
    const changed = this.sql.exec<{ message: string }>("SELECT message FROM archived_changes WHERE seq = ?", seq).toArray()[0];
    return changed ? (JSON.parse(changed.message) as Message) : null;
  }

  isHot(seq: number): boolean {
    return this.sql.exec("SELECT 1 FROM messages WHERE seq = ?", seq).toArray().length > 0;
  }

  /** Writes a changed message back where it lives: its hot row, or the overlay if archived. */
  saveChanged(m: Message): void {
    const written = this.sql.exec(
      "UPDATE messages SET content = ?, media_id = ?, edited_at = ?, deleted = ?, reactions = ? WHERE seq = ?",
      m.content,
      m.media_id ?? null,
      m.edited_at ?? null,
      m.deleted ? 1 : 0,
      m.reactions ? JSON.stringify(m.reactions) : null,
      m.seq,
    ).rowsWritten;
    if (written === 0) this.saveArchivedChange(m);
  }

  saveArchivedChange(m: Message): void {
    this.sql.exec("INSERT OR REPLACE INTO archived_changes (seq, message) VALUES (?, ?)", m.seq, JSON.stringify(m));
  }

  /** Archived messages changed since, in [lo, hi]. */
  archivedChanges(lo: number, hi: number): Message[] {
    return this.sql
      .exec<{ message: string }>("SELECT message FROM archived_changes WHERE seq BETWEEN ? AND ? ORDER BY seq", lo, hi)
      .toArray()
      .map((r) => JSON.parse(r.message) as Message);
  }

  /** Hot messages in [lo, hi], ascending. */
  hotRange(lo: number, hi: number): Message[] {
    return this.sql
      .exec<MessageRow>("SELECT * FROM messages WHERE seq BETWEEN ? AND ? ORDER BY seq", lo, hi)
      .toArray()
      .map((r) => this.toMessage(r));
  }

  /**
   * Hot messages from `lo` on, ascending, up to `hi` or until their content passes
   * `maxChars` (at least one): read row by row, so a run of huge messages is never all in memory.
   */
  hotPrefix(lo: number, hi: number, maxChars: number): Message[] {
    const out: Message[] = [];
    let chars = 0;
    for (const row of this.sql.exec<MessageRow>("SELECT * FROM messages WHERE seq BETWEEN ? AND ? ORDER BY seq", lo, hi)) {
      chars += row.content.length + (row.reactions?.length ?? 0);
      if (out.length > 0 && chars > maxChars) break;
      out.push(this.toMessage(row));
    }
    return out;
  }

  /** The seq of an archived message by its idempotency key. */
  archivedSeqByClientId(senderId: string, clientMessageId: string): number | null {
    return (
      this.sql
        .exec<{ seq: number }>("SELECT seq FROM archived_ids WHERE sender_id = ? AND client_message_id = ?", senderId, clientMessageId)
        .toArray()[0]?.seq ?? null
    );
  }

  /**
   * A deleted message's content also sits in the payload of `joined` feed events written
   * while it was the latest message: those get the deleted version.
   */
  eraseFromFeed(deleted: Message): void {
    this.sql.exec(
      `UPDATE feed SET payload = json_set(payload, '$.last_message', json(?))
       WHERE type = 'joined' AND json_extract(payload, '$.last_message.seq') = ?`,
      JSON.stringify(deleted),
      deleted.seq,
    );
  }

  /** A message_updated event for every member, resolved to the message's state when it is delivered. */
  appendUpdateFeed(seq: number): void {
    this.sql.exec("INSERT INTO feed (type, seq) VALUES ('message_updated', ?)", seq);
  }

  /**
   * The highest seq that may leave the hot tier as far as fan-out goes: feed events are
   * resolved by seq when delivered, so no message an inbox is still owed an event about
   * may move (after delivery, the overlay answers for archived ones).
   */
  archivableUpTo(): number {
    const owed = this.membersOwed();
    if (owed.length === 0) return Number.MAX_SAFE_INTEGER;
    const from = Math.min(...owed.map((m) => m.fed_upto));
    const first = this.sql.exec<{ s: number | null }>("SELECT min(seq) AS s FROM feed WHERE id > ? AND seq IS NOT NULL", from).one().s;
    return first === null ? Number.MAX_SAFE_INTEGER : first - 1;
  }

  /** Stores a message and its feed entry; `seq` is the next after the last, so there are no gaps. */
  appendMessage(m: Omit<Message, "seq" | "conversation_id">): Message {
    const seq = this.sql.exec<{ last_seq: number }>("UPDATE info SET last_seq = last_seq + 1 RETURNING last_seq").one().last_seq;
    const row = this.sql.exec<MessageRow>(
      `INSERT INTO messages (seq, message_id, sender_id, sender_device_id, client_message_id, kind, content, media_id, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      seq,
      m.message_id,
      m.sender_id,
      m.sender_device_id,
      m.client_message_id,
      m.kind,
      m.content,
      m.media_id ?? null,
      m.created_at,
    ).one();
    this.sql.exec("INSERT INTO feed (type, seq) VALUES ('message', ?)", seq);
    return this.toMessage(row);
  }

  /**
   * What a member who joins now is told of the history before them; `own_seqs` also holds
   * the server's kinds (mls_commit, call), which never count as unread either.
   */
  joinedEvent(userId: string): Extract<FeedEvent, { type: "joined" }> {
    const info = this.info()!;
    if (info.history !== "shared") {
      return { type: "joined", conversation_id: info.id, join_seq: info.last_seq, own_seqs: [], last_message: null, earlier_hidden: true };
    }
    const readSeq = this.member(userId)?.read_seq ?? 0;
    const uncounted = SERVER_MESSAGE_KINDS.map(() => "?").join(", ");
    const own = this.sql
      .exec<{ seq: number }>(
        `SELECT seq FROM archived_ids WHERE (sender_id = ? OR kind IN (${uncounted})) AND seq > ?
         UNION ALL SELECT seq FROM messages WHERE (sender_id = ? OR kind IN (${uncounted})) AND seq > ? ORDER BY seq`,
        userId,
        ...SERVER_MESSAGE_KINDS,
        readSeq,
        userId,
        ...SERVER_MESSAGE_KINDS,
        readSeq,
      )
      .toArray()
      .map((r) => r.seq);
    const last = this.sql.exec<MessageRow>("SELECT * FROM messages ORDER BY seq DESC LIMIT 1").toArray()[0];
    return { type: "joined", conversation_id: info.id, join_seq: info.last_seq, own_seqs: own, last_message: last ? this.toMessage(last) : null };
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
    if (r.edited_at !== null) m.edited_at = r.edited_at;
    if (r.deleted) m.deleted = true;
    if (r.reactions !== null) m.reactions = JSON.parse(r.reactions) as Message["reactions"];
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
        `SELECT f.id AS feed_id, f.type AS feed_type, f.seq AS feed_seq, f.payload, f.only_user, m.* FROM feed f
         LEFT JOIN messages m ON f.type IN ('message', 'message_updated') AND m.seq = f.seq
         WHERE f.id > ? AND f.id <= ? ORDER BY f.id LIMIT ?`,
        after,
        end,
        limit,
      )
      .toArray()
      .map((r): FeedEntry => {
        if (r.feed_type !== "message" && r.feed_type !== "message_updated") {
          return { feedId: r.feed_id, onlyUser: r.only_user, event: JSON.parse(r.payload!) as FeedEvent };
        }
        // An archived message (only ever with its changes in the overlay: see archivableUpTo).
        const message = r.seq !== null ? this.toMessage(r) : this.currentMessage(r.feed_seq!);
        if (!message) {
          console.error(`feed ${r.feed_id}: message ${r.feed_seq} is neither hot nor in the overlay; skipped`);
          // Kept as an entry nobody takes, so that a full page still ends where it read.
          return { feedId: r.feed_id, onlyUser: NOBODY, event: { type: "message", message: null as unknown as Message } };
        }
        return { feedId: r.feed_id, onlyUser: r.only_user, event: { type: r.feed_type, message } as FeedEvent };
      });
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
