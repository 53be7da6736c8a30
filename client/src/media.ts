/**
 * Media uploads and downloads (CONTRACT.md section 9). A file up to the one-request limit
 * goes in one POST; a larger one (or one the server refuses as too large for one request)
 * in parts, a few at a time, each retried on its own. The bytes are never copied: parts
 * are slices of the caller's Blob or array.
 */
import { ChatError } from "./errors";
import type { Http } from "./http";

/** The server's default MAX_MEDIA_SINGLE_BYTES; a server with a lower one answers 413 and parts follow. */
export const SINGLE_REQUEST_BYTES = 32 * 1024 * 1024;
const PARALLEL_PARTS = 3;
const ATTEMPTS = 5;

export type MediaData = Blob | ArrayBuffer | Uint8Array;

export interface UploadedMedia {
  media_id: string;
  size: number;
  content_type: string;
  sha256: string;
}

/** What the SDK puts in a media message's `content`: JSON, every field optional. */
export interface MediaContent {
  name?: string;
  caption?: string;
  /** The media type, so a reader can choose how to show it before fetching the bytes. */
  type?: string;
}

const sizeOf = (data: MediaData) => (data instanceof Blob ? data.size : data.byteLength);

function slice(data: MediaData, start: number, end: number): Blob | Uint8Array {
  if (data instanceof Blob) return data.slice(start, end);
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  return bytes.subarray(start, end);
}

/** Enough time for a slow link: 30 s, plus a second per 100 kB. */
const timeoutFor = (bytes: number) => 30_000 + Math.ceil(bytes / 100_000) * 1000;

/** Retries what is worth retrying unchanged (no answer, 5xx, 429), waiting a little longer each time. */
async function retried<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof ChatError) || !err.transient || attempt >= ATTEMPTS) throw err;
      const waitMs = err.retryAfter !== undefined ? err.retryAfter * 1000 : 500 * 2 ** attempt;
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

export async function uploadMedia(http: Http, conversationId: string, data: MediaData, contentType: string): Promise<UploadedMedia> {
  const base = `/v1/conversations/${encodeURIComponent(conversationId)}/media`;
  const size = sizeOf(data);
  if (size <= SINGLE_REQUEST_BYTES) {
    try {
      const body = slice(data, 0, size) as BodyInit;
      const res = await retried(() => http.raw("POST", base, { body, headers: { "content-type": contentType }, timeoutMs: timeoutFor(size) }));
      return (await res.json()) as UploadedMedia;
    } catch (err) {
      if (!(err instanceof ChatError) || err.code !== "too_large") throw err;
    }
  }
  const upload = await http.request<{ upload_id: string; media_id: string; part_size: number; part_count: number }>("POST", `${base}/uploads`, {
    size,
    content_type: contentType,
  });
  const partsPath = `${base}/uploads/${encodeURIComponent(upload.upload_id)}`;
  try {
    let next = 1;
    await Promise.all(
      Array.from({ length: Math.min(PARALLEL_PARTS, upload.part_count) }, async () => {
        while (next <= upload.part_count) {
          const n = next++;
          const body = slice(data, (n - 1) * upload.part_size, n * upload.part_size) as BodyInit;
          await retried(() => http.raw("PUT", `${partsPath}/parts/${n}`, { body, timeoutMs: timeoutFor(upload.part_size) }));
        }
      }),
    );
    // Completing reads the joined file back for its hash: allow for its size.
    const res = await retried(() => http.raw("POST", `${partsPath}/complete`, { timeoutMs: timeoutFor(size / 4) }));
    return (await res.json()) as UploadedMedia;
  } catch (err) {
    await http.raw("DELETE", partsPath).catch(() => undefined);
    throw err;
  }
}

/** The bytes of a media as a Blob of its type (the request carries the token, so an `<img src>` cannot). */
export async function fetchMedia(http: Http, conversationId: string, mediaId: string): Promise<Blob> {
  const res = await http.raw("GET", mediaPath(conversationId, mediaId), { timeoutMs: 10 * 60_000 });
  const blob = await res.blob();
  const type = res.headers.get("content-type") ?? "application/octet-stream";
  return blob.type === type ? blob : new Blob([blob], { type });
}

export const mediaPath = (conversationId: string, mediaId: string) =>
  `/v1/conversations/${encodeURIComponent(conversationId)}/media/${encodeURIComponent(mediaId)}`;

/** The content the SDK sends with a media message, and reads back (a plain string is taken as the caption). */
export function encodeMediaContent(content: MediaContent): string {
  const fields = (["name", "caption", "type"] as const).filter((k) => content[k]).map((k) => [k, content[k]]);
  return JSON.stringify(Object.fromEntries(fields));
}

export function decodeMediaContent(content: string): MediaContent {
  try {
    const parsed = JSON.parse(content) as unknown;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      const fields = parsed as Record<string, unknown>;
      return Object.fromEntries((["name", "caption", "type"] as const).filter((k) => typeof fields[k] === "string").map((k) => [k, fields[k]]));
    }
  } catch {
    // another client's plain caption
  }
  return content ? { caption: content } : {};
}
