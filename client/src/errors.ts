/**
 * The one error type the SDK throws. `code` is CONTRACT.md section 1's code when the
 * server answered, or one of the SDK's own (`network`, `closed`, `encryption_unavailable`).
 */
export type ErrorCode =
  | "invalid_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "too_large"
  | "limit_exceeded"
  | "rate_limited"
  | "internal"
  | "network"
  | "closed"
  | "encryption_unavailable"
  | (string & {});

export class ChatError extends Error {
  override readonly name = "ChatError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The HTTP status, 0 when the request never got an answer. */
    readonly status = 0,
    /** Seconds to wait before retrying, from a 429's `retry-after`. */
    readonly retryAfter?: number,
    /** The whole error body, for fields beyond code and message (e.g. a 409's `epoch`). */
    readonly body?: unknown,
  ) {
    super(message);
  }

  /** Worth retrying unchanged: no answer, a server-side failure, or a rate limit. */
  get transient(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 429;
  }
}

/** Anything thrown, as a ChatError: what never got an answer is a `network` error. */
export function asChatError(err: unknown): ChatError {
  return err instanceof ChatError ? err : new ChatError("network", String(err));
}
