/**
 * Media bodies on their way to R2 and back (CONTRACT.md section 9): streamed, never held
 * whole. An upload's body is read in pieces that are counted (and, for one-request
 * uploads, hashed) on the way, then passes a FixedLengthStream, which gives the R2 binding
 * the length it needs for a stream; a body longer or shorter than declared errors the
 * stream, so R2 stores nothing of it.
 */
import { isInlineType } from "../../protocol";
import { ApiError } from "../errors";

/** The request's content-length: required for media bodies (the contract's 400 when missing, not 411). */
export function declaredLength(request: Request): number {
  const raw = request.headers.get("content-length");
  if (raw === null) throw new ApiError("invalid_request", "content-length is required for media uploads");
  if (!/^\d{1,16}$/.test(raw.trim())) throw new ApiError("invalid_request", "content-length must be a number of bytes");
  return Number(raw.trim());
}

export interface GuardedBody {
  /** What to hand R2: exactly `size` bytes, or an error. */
  stream: ReadableStream<Uint8Array>;
  /** Bytes seen so far: after a failure, anything but `size` means the body was not as declared. */
  seen(): number;
  /** The SHA-256 (lowercase hex) of what passed, once the stream has ended; only with `hash`. */
  sha256(): Promise<string>;
}

export function guardBody(body: ReadableStream<Uint8Array> | null, size: number, opts: { hash: boolean }): GuardedBody {
  const digest = opts.hash ? new crypto.DigestStream("SHA-256") : null;
  const writer = digest?.getWriter();
  // A refused body leaves the hash unfinished: that is not an error of its own.
  digest?.digest.catch(() => undefined);
  const reader = body?.getReader({ mode: "byob" }) ?? null;
  let seen = 0;
  // Request bodies arrive in chunks of about 4 KiB; handed on one by one, every stage after
  // this (and R2) pays per chunk, and each leaves garbage behind. Read straight into pieces
  // of PIECE_BYTES instead (BYOB, readAtLeast), upload throughput rises severalfold, and
  // memory stays bounded by a few pieces in flight.
  const pieces = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const left = size - seen;
      if (left === 0) {
        // One byte more would be one too many.
        const extra = reader ? await reader.read(new Uint8Array(1)) : null;
        if (extra && !extra.done) {
          seen += 1;
          throw new Error(`body longer than the declared ${size} bytes`);
        }
        await writer?.close();
        controller.close();
        return;
      }
      const want = Math.min(PIECE_BYTES, left);
      const { value } = reader ? await reader.readAtLeast(want, new Uint8Array(want)) : { value: undefined };
      seen += value?.byteLength ?? 0;
      if (!value || value.byteLength < want) throw new Error(`body of ${seen} bytes, ${size} declared`);
      if (writer) await writer.write(value);
      controller.enqueue(value);
    },
    cancel: (reason) => reader?.cancel(reason),
  });
  return {
    stream: pieces.pipeThrough(new FixedLengthStream(size)),
    seen: () => seen,
    sha256: async () => {
      if (!digest) throw new Error("not hashed");
      return hex(await digest.digest);
    },
  };
}

/** The size of the pieces an upload goes to R2 in. */
const PIECE_BYTES = 1024 * 1024;

/** The SHA-256 of a stream, read once. */
export async function sha256Of(stream: ReadableStream<Uint8Array>): Promise<string> {
  const digest = new crypto.DigestStream("SHA-256");
  await stream.pipeTo(digest);
  return hex(await digest.digest);
}

const hex = (buffer: ArrayBuffer): string => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");

/** A body that did not arrive as declared; thrown after R2 refused it. */
export const lengthMismatch = (size: number, seen: number) =>
  new ApiError("invalid_request", `the body's length differs from its content-length (${size} declared, ${seen > size ? "more" : seen} received)`);

// ---- downloads ---------------------------------------------------------------------

/**
 * One `bytes=` range as R2 takes it; null when absent or not one we serve (several
 * ranges, other units, garbage): RFC 9110 lets a server ignore Range and answer 200.
 */
export function parseRange(header: string | undefined): R2Range | null {
  const m = header?.trim().match(/^bytes=(\d{0,16})-(\d{0,16})$/i);
  if (!m) return null;
  const [, first, last] = m;
  if (first === "" && last === "") return null;
  if (first === "") return Number(last) === 0 ? null : { suffix: Number(last) };
  if (last === "") return { offset: Number(first) };
  if (Number(last) < Number(first)) return null;
  return { offset: Number(first), length: Number(last) - Number(first) + 1 };
}

/** Whether an If-None-Match list names this etag (weak comparison, as RFC 9110 wants for it), or is `*`. */
export function noneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const strip = (tag: string) => tag.trim().replace(/^W\//, "");
  return header.split(",").some((tag) => tag.trim() === "*" || strip(tag) === strip(etag));
}

/**
 * Headers of every media answer: the bytes are the uploader's, so the browser must not
 * sniff them into something else, must run nothing in them, and downloads what is not
 * image, video or audio rather than showing it. Revalidated on every use (`no-cache`), so
 * a removed member's next request is refused.
 */
export function mediaHeaders(contentType: string, etag: string): Headers {
  const headers = new Headers({
    etag,
    "content-type": contentType,
    "accept-ranges": "bytes",
    "x-content-type-options": "nosniff",
    "content-security-policy": "sandbox",
    "cache-control": "private, no-cache",
  });
  if (!isInlineType(contentType)) headers.set("content-disposition", "attachment");
  return headers;
}
