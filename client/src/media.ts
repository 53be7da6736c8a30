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

/**
 * A file of an encrypted conversation (issue 8 part 5): encrypted by the SDK with a fresh
 * AES-256-GCM key, uploaded as `application/octet-stream`; key, nonce, hash of the plaintext,
 * type and name travel inside the MLS PrivateMessage, never to the server.
 */
export interface SealedMediaContent extends MediaContent {
  /** base64url of the raw AES-256 key, the 12-byte nonce, and the SHA-256 of the plaintext. */
  key: string;
  iv: string;
  sha256: string;
  size: number;
}

const b64u = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
function unb64u(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
async function bytesOf(data: MediaData): Promise<Uint8Array<ArrayBuffer>> {
  if (data instanceof Blob) return new Uint8Array(await data.arrayBuffer());
  return data instanceof Uint8Array ? new Uint8Array(data) : new Uint8Array(data.slice(0));
}

/** Encrypts a file for upload; the whole file is held once in memory (100 MiB at most). */
export async function sealMedia(data: MediaData, content: MediaContent): Promise<{ sealed: Uint8Array; media: SealedMediaContent }> {
  const plain = await bytesOf(data);
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt"]);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain));
  const sha256 = new Uint8Array(await crypto.subtle.digest("SHA-256", plain));
  return { sealed, media: { ...content, key: b64u(raw), iv: b64u(iv), sha256: b64u(sha256), size: plain.byteLength } };
}

/** Decrypts a fetched file and checks it is the one the message named. */
export async function openMedia(blob: Blob, media: SealedMediaContent): Promise<Blob> {
  const key = await crypto.subtle.importKey("raw", unb64u(media.key), "AES-GCM", false, ["decrypt"]);
  let plain: Uint8Array<ArrayBuffer>;
  try {
    plain = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64u(media.iv) }, key, await blob.arrayBuffer()));
  } catch {
    throw new ChatError("invalid_request", "the media does not decrypt with the key of its message");
  }
  const sha256 = b64u(new Uint8Array(await crypto.subtle.digest("SHA-256", plain)));
  if (sha256 !== media.sha256) throw new ChatError("invalid_request", "the media's SHA-256 differs from its message's");
  return new Blob([plain], { type: media.type ?? "application/octet-stream" });
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
