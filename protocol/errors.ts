/** Error codes and their HTTP statuses, CONTRACT.md section 1. */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  limit_exceeded: 422,
  rate_limited: 429,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** The body of every non-2xx answer and, with `type` and `ref`, of every WebSocket error frame. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  /** Seconds, for `rate_limited`. */
  retryAfter?: number;
  /** Fields of the answer's body beside `error`, e.g. a commit conflict's `epoch` (section 10). */
  extra?: Record<string, unknown>;
}

/**
 * What an object's RPC method answers: a value, or an error in the contract's terms.
 * Workers RPC does not carry custom error classes across the stub, so failures that
 * clients must see travel as data.
 */
export type Outcome<T> = { ok: true; value: T; created?: boolean } | { ok: false; error: ErrorBody };

export const ok = <T>(value: T, created?: boolean): Outcome<T> =>
  created === undefined ? { ok: true, value } : { ok: true, value, created };

export const fail = (code: ErrorCode, message: string, retryAfter?: number): { ok: false; error: ErrorBody } => ({
  ok: false,
  error: retryAfter === undefined ? { code, message } : { code, message, retryAfter },
});

/** A failure whose body carries more than `error`: `{"error":…, ...extra}`. */
export const failWith = (code: ErrorCode, message: string, extra: Record<string, unknown>): { ok: false; error: ErrorBody } => ({
  ok: false,
  error: { code, message, extra },
});

/** WebSocket close codes. */
export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_FORBIDDEN = 4403;
