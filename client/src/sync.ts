/**
 * What the device stream has produced, stored together with the cursor that produced
 * it: the highest seq handed out per conversation (dedup by (conversation_id, seq)),
 * the receipts of every member, and the members known per conversation (for ticks).
 * One `write` stores all of it with the cursor, so a restart resumes exactly there.
 */
import type { ChatStorage } from "./storage";
import type { MessageStatus, Receipt } from "./types";

export const SYNC_KEY = "sync";

export interface Markers {
  delivered: number;
  read: number;
}

export interface SyncSnapshot {
  /** Whose state this is: a different user's login starts over. */
  user_id: string;
  cursor: string | null;
  seqs: Record<string, number>;
  receipts: Record<string, Record<string, Markers>>;
  members: Record<string, string[]>;
}

export class SyncState {
  private snap: SyncSnapshot;

  private constructor(
    private readonly storage: ChatStorage,
    snap: SyncSnapshot,
  ) {
    this.snap = snap;
  }

  static async load(storage: ChatStorage, userId: string): Promise<SyncState> {
    const stored = await storage.read<SyncSnapshot>(SYNC_KEY);
    const fresh: SyncSnapshot = { user_id: userId, cursor: null, seqs: {}, receipts: {}, members: {} };
    return new SyncState(storage, stored?.user_id === userId ? { ...fresh, ...stored } : fresh);
  }

  get cursor(): string | null {
    return this.snap.cursor;
  }

  lastSeq(conversationId: string): number {
    return this.snap.seqs[conversationId] ?? 0;
  }

  setSeq(conversationId: string, seq: number): void {
    if (seq > this.lastSeq(conversationId)) this.snap.seqs[conversationId] = seq;
  }

  setCursor(cursor: string | undefined): void {
    if (cursor) this.snap.cursor = cursor;
  }

  /** Markers only move forward, so applying a receipt twice (socket and stream) is harmless. */
  applyReceipt(r: Receipt): boolean {
    const byUser = (this.snap.receipts[r.conversation_id] ??= {});
    const markers = (byUser[r.user_id] ??= { delivered: 0, read: 0 });
    if (r.up_to_seq <= markers[r.kind]) return false;
    markers[r.kind] = r.up_to_seq;
    if (r.kind === "read" && markers.delivered < r.up_to_seq) markers.delivered = r.up_to_seq;
    return true;
  }

  markers(conversationId: string): Record<string, Markers> {
    return this.snap.receipts[conversationId] ?? {};
  }

  setMembers(conversationId: string, userIds: string[]): void {
    this.snap.members[conversationId] = [...userIds];
  }

  forget(conversationId: string): void {
    delete this.snap.members[conversationId];
  }

  /**
   * `sent` until every other member has the message (`delivered`) or has read it (`read`).
   * With the members unknown, any other user's marker counts.
   */
  statusOf(conversationId: string, seq: number, me: string): MessageStatus {
    const markers = this.markers(conversationId);
    const others = (this.snap.members[conversationId] ?? Object.keys(markers)).filter((u) => u !== me);
    if (others.length === 0) return "sent";
    const all = (kind: keyof Markers) => others.every((u) => (markers[u]?.[kind] ?? 0) >= seq);
    return all("read") ? "read" : all("delivered") ? "delivered" : "sent";
  }

  /** Stores the cursor and everything it produced in one atomic write (with `extra` entries, e.g. MLS group states). */
  save(extra: Record<string, unknown> = {}): Promise<void> {
    return this.storage.write({ ...extra, [SYNC_KEY]: this.snap });
  }
}
