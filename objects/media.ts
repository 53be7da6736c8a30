/**
 * The media of one conversation (CONTRACT.md section 9): which uploads exist, who may
 * continue them, which are complete, and which message names each. The bytes never pass
 * through here: the Worker streams them to R2 and reports back; this object owns the
 * lifecycle, so every R2 object and multipart upload it records is eventually deleted
 * unless a message keeps it.
 *
 * Deletion is one path for every cause (an upload abandoned or aborted, media left
 * unreferenced, a refused body, a deleted message): the row is made due (`expires_at`),
 * and `sweep` deletes the R2 side first and the row last, so a failure retries from the alarm.
 */
import { fail, ok, type MediaInfo, type Outcome } from "../protocol";
import type { Caller } from "../shared/caller";

/** Appended to the Conversation object's schema steps (objects/conversation-store.ts). */
export const MEDIA_SCHEMA = [
  `CREATE TABLE media (
     media_id TEXT PRIMARY KEY, r2_key TEXT NOT NULL, user_id TEXT NOT NULL, device_id TEXT NOT NULL,
     size INTEGER NOT NULL, content_type TEXT NOT NULL, sha256 TEXT,
     state TEXT NOT NULL, created_at INTEGER NOT NULL, completed_at INTEGER,
     upload_id TEXT UNIQUE, r2_upload_id TEXT, part_size INTEGER, part_count INTEGER,
     expires_at INTEGER, message_seq INTEGER);
   CREATE INDEX media_expiry ON media (expires_at) WHERE expires_at IS NOT NULL;
   CREATE INDEX media_message ON media (message_seq) WHERE message_seq IS NOT NULL;
   CREATE TABLE media_parts (upload_id TEXT NOT NULL, part INTEGER NOT NULL, etag TEXT NOT NULL, PRIMARY KEY (upload_id, part));`,
] as const;

/** The R2 key of a conversation's media: the id alone decides it, and it can only name this conversation's. */
export const mediaKey = (conversationId: string, mediaId: string): string => `media/${conversationId}/${mediaId}`;

/** A sweep that failed to delete from R2 tries again this much later. */
const RETRY_MS = 60_000;

type State = "uploading" | "complete" | "doomed";

interface MediaRow extends Record<string, SqlStorageValue> {
  media_id: string;
  r2_key: string;
  user_id: string;
  device_id: string;
  size: number;
  content_type: string;
  sha256: string | null;
  state: State;
  created_at: number;
  completed_at: number | null;
  upload_id: string | null;
  r2_upload_id: string | null;
  part_size: number | null;
  part_count: number | null;
  expires_at: number | null;
  message_seq: number | null;
}

export interface BeginSpec {
  mediaId: string;
  size: number;
  contentType: string;
  /** For uploads in parts. */
  multipart?: { uploadId: string; partSize: number; partCount: number };
}

/** Where one part goes, and how long it must be. */
export interface PartTarget {
  key: string;
  r2UploadId: string;
  size: number;
}

/** What completing an upload takes: its parts in order, or the media when it already is complete. */
export type Completion =
  | { done: MediaInfo }
  | { done: null; mediaId: string; key: string; r2UploadId: string; size: number; parts: { partNumber: number; etag: string }[] };

export interface MediaHost {
  conversationId(): string;
  bucket: R2Bucket;
  /** An upload not completed, or media no message names, is deleted this long after. */
  ttlMs: number;
  /** Makes sure the object's alarm fires no later than `at` (it calls `sweep`). */
  wakeAt(at: number): Promise<void>;
}

export class MediaLedger {
  constructor(
    private readonly sql: SqlStorage,
    private readonly host: MediaHost,
  ) {}

  // ---- uploads -----------------------------------------------------------------

  /** Records an upload before any byte is stored, so that whatever happens next is cleaned up. */
  async begin(caller: Caller, spec: BeginSpec): Promise<Outcome<{ key: string; r2UploadId: string | null }>> {
    const now = Date.now();
    const key = mediaKey(this.host.conversationId(), spec.mediaId);
    const expiresAt = now + this.host.ttlMs;
    const m = spec.multipart;
    this.sql.exec(
      `INSERT INTO media (media_id, r2_key, user_id, device_id, size, content_type, state, created_at, upload_id, part_size, part_count, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, 'uploading', ?, ?, ?, ?, ?)`,
      spec.mediaId,
      key,
      caller.userId,
      caller.deviceId,
      spec.size,
      spec.contentType,
      now,
      m?.uploadId ?? null,
      m?.partSize ?? null,
      m?.partCount ?? null,
      expiresAt,
    );
    await this.host.wakeAt(expiresAt);
    if (!m) return ok({ key, r2UploadId: null });
    let upload: R2MultipartUpload;
    try {
      upload = await this.host.bucket.createMultipartUpload(key, { httpMetadata: { contentType: spec.contentType } });
    } catch (err) {
      console.error(`R2 refused a multipart upload for ${spec.mediaId}`, err);
      await this.doom("media_id = ?", spec.mediaId);
      return fail("internal", "could not begin the upload; try again");
    }
    this.sql.exec("UPDATE media SET r2_upload_id = ? WHERE media_id = ?", upload.uploadId, spec.mediaId);
    return ok({ key, r2UploadId: upload.uploadId });
  }

  /** A one-request upload is stored in R2 with this hash. */
  uploaded(caller: Caller, mediaId: string, sha256: string): Outcome<MediaInfo> {
    const row = this.row("media_id", mediaId);
    if (!row || row.upload_id !== null || row.state !== "uploading") return fail("not_found", "no such upload");
    if (row.device_id !== caller.deviceId) return fail("forbidden", "only the device that began an upload may continue it");
    return ok(this.markComplete(row, sha256));
  }

  /** A one-request upload whose body was refused: whatever reached R2 goes. */
  async discard(caller: Caller, mediaId: string): Promise<void> {
    const row = this.row("media_id", mediaId);
    if (!row || row.state !== "uploading" || row.device_id !== caller.deviceId) return;
    await this.doom("media_id = ?", mediaId);
  }

  partTarget(caller: Caller, uploadId: string, part: number): Outcome<PartTarget> {
    const row = this.upload(caller, uploadId);
    if (!row.ok) return row;
    const { value: u } = row;
    if (u.state !== "uploading") return fail("invalid_request", "the upload is already complete");
    if (!Number.isInteger(part) || part < 1 || part > u.part_count!) return fail("invalid_request", `part: 1 to ${u.part_count}`);
    if (u.r2_upload_id === null) return fail("not_found", "no such upload");
    const size = part < u.part_count! ? u.part_size! : u.size - u.part_size! * (u.part_count! - 1);
    return ok({ key: u.r2_key, r2UploadId: u.r2_upload_id, size });
  }

  /** A part is in R2; a repeat replaces the earlier one (the last write wins, as in R2). */
  partStored(caller: Caller, uploadId: string, part: number, etag: string): Outcome<null> {
    const row = this.upload(caller, uploadId);
    if (!row.ok) return row;
    if (row.value.state !== "uploading") return fail("invalid_request", "the upload is already complete");
    this.sql.exec("INSERT OR REPLACE INTO media_parts (upload_id, part, etag) VALUES (?, ?, ?)", uploadId, part, etag);
    return ok(null);
  }

  completion(caller: Caller, uploadId: string): Outcome<Completion> {
    const row = this.upload(caller, uploadId);
    if (!row.ok) return row;
    const u = row.value;
    if (u.state === "complete") return ok({ done: info(u) });
    const parts = this.sql
      .exec<{ part: number; etag: string }>("SELECT part, etag FROM media_parts WHERE upload_id = ? ORDER BY part", uploadId)
      .toArray();
    const have = new Set(parts.map((p) => p.part));
    const missing = Array.from({ length: u.part_count! }, (_, i) => i + 1).filter((n) => !have.has(n));
    if (missing.length) return fail("invalid_request", `parts not uploaded yet: ${missing.slice(0, 20).join(", ")}${missing.length > 20 ? ", …" : ""}`);
    return ok({
      done: null,
      mediaId: u.media_id,
      key: u.r2_key,
      r2UploadId: u.r2_upload_id!,
      size: u.size,
      parts: parts.map((p) => ({ partNumber: p.part, etag: p.etag })),
    });
  }

  /** The parts are one R2 object now, whose bytes hash to `sha256`. */
  completed(caller: Caller, uploadId: string, sha256: string): Outcome<MediaInfo> {
    const row = this.upload(caller, uploadId);
    if (!row.ok) return row;
    if (row.value.state === "complete") return ok(info(row.value));
    if (row.value.state !== "uploading") return fail("not_found", "no such upload");
    this.sql.exec("DELETE FROM media_parts WHERE upload_id = ?", uploadId);
    return ok(this.markComplete(row.value, sha256));
  }

  /** DELETE …/uploads/{upload_id}: the parts and the upload go (an upload already complete stays). */
  async abort(caller: Caller, uploadId: string): Promise<Outcome<null>> {
    const row = this.upload(caller, uploadId);
    if (!row.ok) return row;
    if (row.value.state === "complete") return fail("invalid_request", "the upload is already complete");
    await this.doom("upload_id = ?", uploadId);
    return ok(null);
  }

  // ---- messages --------------------------------------------------------------------

  /** Why a message may not name this media, or null: it must be complete here and named by no other message. */
  refusal(mediaId: string): Outcome<never> | null {
    const row = this.row("media_id", mediaId);
    if (!row || row.state === "doomed") return fail("invalid_request", "media_id: no such media in this conversation");
    if (row.state !== "complete") return fail("invalid_request", "media_id: the upload is not complete");
    if (row.message_seq !== null) return fail("invalid_request", `media_id: already attached to message ${row.message_seq}`);
    return null;
  }

  /** In the transaction that stores message `seq`: the media is kept from now on. */
  attach(mediaId: string, seq: number): void {
    this.sql.exec("UPDATE media SET message_seq = ?, expires_at = NULL WHERE media_id = ?", seq, mediaId);
  }

  /**
   * Section 13: a deleted message's media is erased. Call it once the message's deletion
   * is stored; the R2 object goes now, or from the alarm if R2 fails.
   */
  async deleteMediaOfMessage(seq: number): Promise<void> {
    await this.doom("message_seq = ?", seq);
  }

  // ---- the sweep -------------------------------------------------------------------

  /** From the alarm: deletes what is due. Answers when the next row falls due, or null. */
  async sweep(now = Date.now()): Promise<number | null> {
    const due = this.sql.exec<MediaRow>("SELECT * FROM media WHERE expires_at <= ?", now).toArray();
    if (due.length) {
      // Doomed before the first await: a message being sent meanwhile can no longer name it.
      this.sql.exec("UPDATE media SET state = 'doomed', expires_at = ? WHERE expires_at <= ?", now + RETRY_MS, now);
      await Promise.all(due.map((row) => this.erase(row)));
    }
    return this.sql.exec<{ at: number | null }>("SELECT min(expires_at) AS at FROM media").one().at;
  }

  private async erase(row: MediaRow): Promise<void> {
    try {
      if (row.r2_upload_id !== null && row.completed_at === null) {
        // An upload R2 no longer knows (aborted before, or never created) is fine.
        await this.host.bucket.resumeMultipartUpload(row.r2_key, row.r2_upload_id).abort().catch(() => undefined);
      }
      await this.host.bucket.delete(row.r2_key);
      this.sql.exec("DELETE FROM media WHERE media_id = ?", row.media_id);
      if (row.upload_id !== null) this.sql.exec("DELETE FROM media_parts WHERE upload_id = ?", row.upload_id);
    } catch (err) {
      console.warn(`deleting media ${row.media_id} failed; the alarm retries`, err);
    }
  }

  /** Makes the matching rows due now, then sweeps; the alarm is the safety net if this is cut short. */
  private async doom(where: string, value: string | number): Promise<void> {
    const now = Date.now();
    const rows = this.sql.exec(`UPDATE media SET state = 'doomed', expires_at = ? WHERE ${where}`, now, value).rowsWritten;
    if (rows === 0) return;
    await this.host.wakeAt(now + RETRY_MS);
    await this.sweep(now);
  }

  // ---- rows ------------------------------------------------------------------------

  private markComplete(row: MediaRow, sha256: string): MediaInfo {
    const now = Date.now();
    const expiresAt = now + this.host.ttlMs;
    this.sql.exec(
      "UPDATE media SET state = 'complete', sha256 = ?, completed_at = ?, expires_at = ? WHERE media_id = ?",
      sha256,
      now,
      expiresAt,
      row.media_id,
    );
    // No await: the alarm set at begin() fires no later than this; the sweep re-arms it.
    return info({ ...row, sha256 });
  }

  private row(column: "media_id" | "upload_id", value: string): MediaRow | null {
    return this.sql.exec<MediaRow>(`SELECT * FROM media WHERE ${column} = ?`, value).toArray()[0] ?? null;
  }

  /** An upload in parts that the calling device began. */
  private upload(caller: Caller, uploadId: string): Outcome<MediaRow> {
    const row = this.row("upload_id", uploadId);
    if (!row || row.state === "doomed") return fail("not_found", "no such upload");
    if (row.device_id !== caller.deviceId) return fail("forbidden", "only the device that began an upload may continue it");
    return ok(row);
  }
}

const info = (row: MediaRow): MediaInfo => ({ media_id: row.media_id, size: row.size, content_type: row.content_type, sha256: row.sha256! });
