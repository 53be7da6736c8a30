/**
 * What the fuzz oracle knows of the public interface (CONTRACT.md), written down here from
 * the contract rather than imported from the server, so that a server-side mistake in
 * protocol/ cannot make the oracle agree with it.
 */

/** CONTRACT.md section 1. */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  limit_exceeded: 422,
  rate_limited: 429,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];
export const CODE_OF_STATUS: Record<number, ErrorCode> = Object.fromEntries(
  Object.entries(ERROR_STATUS).map(([code, status]) => [status, code as ErrorCode]),
);

/** CONTRACT.md section 2 (defaults). */
export const LIMITS = {
  maxContentChars: 100_000,
  maxBodyBytes: 256 * 1024,
  maxGroupMembers: 256,
  sendPerMinute: 100,
  historyLimitMin: 1,
  historyLimitMax: 200,
} as const;

export const HANDLE_RE = /^[a-z0-9_]{3,32}$/;

/** WebSocket close codes of section 1. */
export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_FORBIDDEN = 4403;

/**
 * Checks a non-2xx body: exactly `{"error":{"code","message"}}`, a code of section 1 whose
 * status is the response's. Answers what is wrong, or null.
 */
export function errorBodyProblem(status: number, text: string, headers?: Headers): string | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `status ${status} with a body that is not JSON: ${JSON.stringify(text.slice(0, 120))}`;
  }
  if (!isPlainObject(body) || Object.keys(body).join(",") !== "error") {
    return `status ${status}: body is not exactly {"error":…}: ${text.slice(0, 160)}`;
  }
  const err = body.error;
  if (!isPlainObject(err) || Object.keys(err).sort().join(",") !== "code,message") {
    return `status ${status}: error is not exactly {code,message}: ${text.slice(0, 160)}`;
  }
  if (typeof err.code !== "string" || typeof err.message !== "string") return `status ${status}: code/message not strings`;
  const expected = ERROR_STATUS[err.code as ErrorCode];
  if (expected === undefined) return `status ${status}: code ${JSON.stringify(err.code)} is not in the contract`;
  if (expected !== status) return `status ${status} with code ${err.code} (which is ${expected})`;
  if (status === 429) {
    const ra = headers?.get("retry-after");
    if (!ra || !/^\d+$/.test(ra) || Number(ra) < 1) return `429 without a retry-after header in seconds (got ${ra})`;
  }
  return null;
}

/** Checks a WebSocket error frame; `ref` undefined means either the frame's id or null is fine. */
export function errorFrameProblem(frame: any, codes: readonly ErrorCode[] | undefined, ref: string | null | undefined): string | null {
  if (!isPlainObject(frame) || frame.type !== "error") return `not an error frame: ${JSON.stringify(frame).slice(0, 160)}`;
  if (typeof frame.code !== "string" || !(frame.code in ERROR_STATUS)) return `error frame code ${JSON.stringify(frame.code)} not in the contract`;
  if (typeof frame.message !== "string") return "error frame without a message";
  if (!("ref" in frame) || (frame.ref !== null && typeof frame.ref !== "string")) return `error frame ref is ${JSON.stringify(frame.ref)}`;
  if (ref !== undefined && frame.ref !== ref) return `error frame ref ${JSON.stringify(frame.ref)}, expected ${JSON.stringify(ref)}`;
  if (codes && !codes.includes(frame.code as ErrorCode)) return `error frame code ${frame.code}, expected one of ${codes.join("/")}`;
  return null;
}

export function isPlainObject(v: unknown): v is Record<string, any> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
