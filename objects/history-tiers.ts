/**
 * History tiers (CONTRACT.md section 14): a conversation keeps its newest messages in its
 * own SQLite (the hot tier) and moves older ones, from its alarm, to immutable gzipped JSON
 * segments in R2 (`history/<conversation_id>/<first>-<last>.json.gz`), indexed in `segments`.
 *
 * - A segment holds the next HISTORY_SEGMENT_MESSAGES messages after the last one (fewer if
 *   their content passes SEGMENT_MAX_CHARS). It is recorded as attempted, written, then
 *   indexed in the transaction that deletes its rows: a crash in between rewrites the same
 *   key later, and an attempt that would now end elsewhere has its object deleted.
 * - What stays behind per archived message: its idempotency key (`archived_ids`), so resends
 *   still answer the original.
 * - Changes to archived messages go to an overlay (`archived_changes`: the whole message as it
 *   now is), which every read applies on top of the segment.
 * - A delete of an archived message also rewrites its segment (same key) without the content;
 *   `segment_scrubs` remembers the rewrite is owed until it is done, so a crash only delays it.
 */
import type { Message } from "../protocol";
import type { ConversationStore } from "./conversation-store";

export interface TierSettings {
  /** HOT_MESSAGES: at least this many of the newest messages stay in the object. */
  hot: number;
  /** HISTORY_SEGMENT_MESSAGES: messages per segment, moved together. */
  segment: number;
}

/** Segments moved per alarm; the alarm comes straight back while more are due. */
const SEGMENTS_PER_ALARM = 8;
/**
 * A segment also ends early once its messages' content passes this many characters, so
 * that neither a move nor a page read holds more than a few MB (an object has 128 MB).
 */
const SEGMENT_MAX_CHARS = 2_000_000;
/** Decompressed segments kept in memory for paging: at most this many, and this much content. */
const CACHED_SEGMENTS = 8;
const CACHED_CHARS = 4_000_000;
const RETRY_MS = 30_000;

interface SegmentRow extends Record<string, SqlStorageValue> {
  first_seq: number;
  last_seq: number;
  key: string;
}

/**
 * The one paging function: the seqs [lo, hi] a history query asks for. `seq` is gapless
 * from 1 to `lastSeq`, so the range follows from the query alone, whichever tier holds it.
 */
export function pageRange(q: { after?: number; before?: number; limit: number }, lastSeq: number): { lo: number; hi: number } {
  if (q.after !== undefined) return { lo: q.after + 1, hi: Math.min(lastSeq, q.after + q.limit) };
  const hi = q.before !== undefined ? Math.min(lastSeq, q.before - 1) : lastSeq;
  return { lo: Math.max(1, hi - q.limit + 1), hi };
}

export class HistoryTiers {
  private readonly cache = new Map<number, Message[]>();
  /** Archiving and segment rewrites one at a time: each reads a segment and writes it back. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly bucket: R2Bucket,
    private readonly store: ConversationStore,
    readonly settings: TierSettings,
  ) {}

  private get sql() {
    return this.ctx.storage.sql;
  }

  // ---- reads -----------------------------------------------------------------

  /** The message at `seq` as it now is, from whichever tier holds it. */
  async messageAt(seq: number): Promise<Message | null> {
    const current = this.store.currentMessage(seq);
    if (current) return current;
    const segment = this.segmentOf(seq);
    if (!segment) return null;
    const messages = await this.load(segment);
    return this.store.currentMessage(seq) ?? messages.find((m) => m.seq === seq) ?? null;
  }

  /** The original of a resend, archived or not. */
  async byClientId(senderId: string, clientMessageId: string): Promise<Message | null> {
    const hot = this.store.messageByClientId(senderId, clientMessageId);
    if (hot) return hot;
    const seq = this.store.archivedSeqByClientId(senderId, clientMessageId);
    return seq === null ? null : this.messageAt(seq);
  }

  /** Every message in [lo, hi], ascending, as it now is. */
  async range(lo: number, hi: number): Promise<Message[]> {
    if (hi < lo) return [];
    for (let attempt = 0; ; attempt++) {
      const segments = this.sql
        .exec<SegmentRow>("SELECT * FROM segments WHERE last_seq >= ? AND first_seq <= ? ORDER BY first_seq", lo, hi)
        .toArray();
      const loaded = await Promise.all(segments.map((s) => this.load(s)));
      // From here on synchronous: nothing can move between the reads below.
      const archivedUpTo = this.archivedUpTo();
      const overlay = new Map(this.store.archivedChanges(lo, Math.min(hi, archivedUpTo)).map((m) => [m.seq, m]));
      const old = loaded
        .flat()
        .filter((m) => m.seq >= lo && m.seq <= hi && m.seq <= archivedUpTo)
        .map((m) => overlay.get(m.seq) ?? m);
      const hot = this.store.hotRange(Math.max(lo, archivedUpTo + 1), hi);
      const all = [...old, ...hot];
      // A segment indexed while this read waited for R2 is not among `loaded`: read again.
      if (all.length === hi - lo + 1 || attempt >= 2) return all;
    }
  }

  private segmentOf(seq: number): SegmentRow | null {
    return this.sql.exec<SegmentRow>("SELECT * FROM segments WHERE first_seq <= ? AND last_seq >= ?", seq, seq).toArray()[0] ?? null;
  }

  /** The last archived seq (0 when nothing is). */
  archivedUpTo(): number {
    return this.sql.exec<{ s: number | null }>("SELECT max(last_seq) AS s FROM segments").one().s ?? 0;
  }

  private async load(segment: SegmentRow): Promise<Message[]> {
    const cached = this.cache.get(segment.first_seq);
    if (cached) return cached;
    const object = await this.bucket.get(segment.key);
    if (!object) throw new Error(`history segment ${segment.key} is missing from R2`);
    const messages = JSON.parse(await gunzip(await object.arrayBuffer())) as Message[];
    this.remember(segment.first_seq, messages);
    return messages;
  }

  private remember(first: number, messages: Message[]): void {
    this.cache.delete(first);
    this.cache.set(first, messages);
    const size = (ms: Message[]) => ms.reduce((n, m) => n + m.content.length, 0);
    let total = [...this.cache.values()].reduce((n, ms) => n + size(ms), 0);
    while (this.cache.size > 1 && (this.cache.size > CACHED_SEGMENTS || total > CACHED_CHARS)) {
      const oldest = this.cache.keys().next().value!;
      total -= size(this.cache.get(oldest)!);
      this.cache.delete(oldest);
    }
  }

  // ---- moves (from the alarm) ------------------------------------------------

  /**
   * Moves what is due (a few segments), and does the rewrites deletes still owe. Answers
   * when the alarm should come back, or null when nothing more is due.
   */
  async onAlarm(): Promise<number | null> {
    try {
      await this.scrubPending();
      for (let i = 0; i < SEGMENTS_PER_ALARM; i++) if (!(await this.exclusive(() => this.archiveOne()))) return null;
      return Date.now() + 100;
    } catch (err) {
      console.error("history tiering failed; will retry", err);
      return Date.now() + RETRY_MS;
    }
  }

  /** Moves the next segment if it is due; answers whether it did. */
  async archiveOne(): Promise<boolean> {
    const info = this.store.info();
    if (!info) return false;
    const first = this.archivedUpTo() + 1;
    const due = first + this.settings.segment - 1;
    if (due > info.last_seq - this.settings.hot || due > this.store.archivableUpTo()) {
      await this.dropStaleAttempt(first, due);
      return false;
    }
    const rows = this.store.hotPrefix(first, due, SEGMENT_MAX_CHARS);
    const last = first + rows.length - 1;
    if (rows.length === 0 || rows.at(-1)!.seq !== last) throw new Error(`hot tier misses messages in ${first}-${due}`);
    // An earlier attempt from `first` that crashed may have ended elsewhere (the rows changed since).
    await this.dropStaleAttempt(first, last);
    const key = `history/${info.id}/${first}-${last}.json.gz`;
    this.sql.exec("INSERT OR REPLACE INTO segment_attempts (first_seq, last_seq, key) VALUES (?, ?, ?)", first, last, key);
    await this.bucket.put(key, await gzip(JSON.stringify(rows)), { httpMetadata: { contentType: "application/gzip" } });
    const before = new Map(rows.map((m) => [m.seq, JSON.stringify(m)]));
    this.ctx.storage.transactionSync(() => {
      let erased = false;
      // Changed while the segment was being written: the overlay keeps what it is now.
      for (const now of this.store.hotRange(first, last)) {
        if (JSON.stringify(now) === before.get(now.seq)) continue;
        this.store.saveArchivedChange(now);
        if (now.deleted) erased = true;
      }
      this.sql.exec("INSERT INTO segments (first_seq, last_seq, key) VALUES (?, ?, ?)", first, last, key);
      this.sql.exec(
        `INSERT OR IGNORE INTO archived_ids (sender_id, client_message_id, seq, kind)
         SELECT sender_id, client_message_id, seq, kind FROM messages WHERE seq BETWEEN ? AND ?`,
        first,
        last,
      );
      this.sql.exec("DELETE FROM messages WHERE seq BETWEEN ? AND ?", first, last);
      this.sql.exec("DELETE FROM segment_attempts WHERE first_seq = ?", first);
      if (erased) this.owesScrub(first);
    });
    this.remember(first, rows);
    return true;
  }

  /**
   * Attempts that crashed before indexing, for a segment other than [first, last] (which the
   * next write replaces): HOT_MESSAGES, the segment size or the rows changed since, so their
   * objects would never be rewritten.
   */
  private async dropStaleAttempt(first: number, last: number): Promise<void> {
    const stale = this.sql
      .exec<SegmentRow>("SELECT * FROM segment_attempts WHERE NOT (first_seq = ? AND last_seq = ?)", first, last)
      .toArray();
    for (const attempt of stale) {
      await this.bucket.delete(attempt.key);
      this.sql.exec("DELETE FROM segment_attempts WHERE first_seq = ?", attempt.first_seq);
    }
  }

  // ---- deletes of archived messages --------------------------------------------

  /**
   * A delete of a hot message: a segment written for it by an attempt that crashed before
   * indexing it still holds the content in R2. That object goes (the next attempt writes
   * it again from the rows as they are then). An attempt in flight finds the change itself.
   */
  async forgetAttemptFor(seq: number): Promise<void> {
    await this.exclusive(async () => {
      const attempt = this.sql
        .exec<SegmentRow>("SELECT * FROM segment_attempts WHERE first_seq <= ? AND last_seq >= ?", seq, seq)
        .toArray()[0];
      if (!attempt) return;
      await this.bucket.delete(attempt.key);
      this.sql.exec("DELETE FROM segment_attempts WHERE first_seq = ?", attempt.first_seq);
    });
  }

  /** In the delete's transaction: the segment holding `seq` owes a rewrite. */
  owesScrubFor(seq: number): void {
    const segment = this.segmentOf(seq);
    if (segment) this.owesScrub(segment.first_seq);
  }

  private owesScrub(first: number): void {
    this.sql.exec(
      "INSERT INTO segment_scrubs (first_seq, version) VALUES (?, 1) ON CONFLICT (first_seq) DO UPDATE SET version = version + 1",
      first,
    );
  }

  /** Rewrites every segment that still holds a deleted message's content. */
  async scrubPending(): Promise<void> {
    const owed = this.sql.exec<{ first_seq: number }>("SELECT first_seq FROM segment_scrubs ORDER BY first_seq").toArray();
    for (const { first_seq } of owed) await this.exclusive(() => this.scrub(first_seq));
  }

  private async scrub(first: number): Promise<void> {
    const segment = this.sql.exec<SegmentRow>("SELECT * FROM segments WHERE first_seq = ?", first).toArray()[0];
    if (!segment) return void this.sql.exec("DELETE FROM segment_scrubs WHERE first_seq = ?", first);
    const object = await this.bucket.get(segment.key);
    if (!object) throw new Error(`history segment ${segment.key} is missing from R2`);
    const stored = JSON.parse(await gunzip(await object.arrayBuffer())) as Message[];
    // The deletes recorded up to this point are the ones this rewrite covers.
    const version = this.sql.exec<{ version: number }>("SELECT version FROM segment_scrubs WHERE first_seq = ?", first).toArray()[0]?.version;
    if (version === undefined) return;
    const deleted = new Map(
      this.store
        .archivedChanges(segment.first_seq, segment.last_seq)
        .filter((m) => m.deleted)
        .map((m) => [m.seq, m]),
    );
    const rewritten = stored.map((m) => deleted.get(m.seq) ?? m);
    await this.bucket.put(segment.key, await gzip(JSON.stringify(rewritten)), { httpMetadata: { contentType: "application/gzip" } });
    this.sql.exec("DELETE FROM segment_scrubs WHERE first_seq = ? AND version = ?", first, version);
    this.remember(first, rewritten);
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function gunzip(bytes: ArrayBuffer): Promise<string> {
  return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
}
