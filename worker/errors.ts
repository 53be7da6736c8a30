/** Contract errors (CONTRACT.md section 1), thrown anywhere and rendered once in `app.onError`. */
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError } from "zod";
import { ERROR_STATUS, type ErrorBody, type ErrorCode, type Outcome } from "../protocol";

export class ApiError extends HTTPException {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryAfter?: number,
    readonly extra?: Record<string, unknown>,
  ) {
    super(ERROR_STATUS[code] as ContentfulStatusCode, { message });
  }

  static from(body: ErrorBody): ApiError {
    return new ApiError(body.code, body.message, body.retryAfter, body.extra);
  }

  toResponse(): Response {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.retryAfter !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil(this.retryAfter)));
    const body = { error: { code: this.code, message: this.message }, ...this.extra };
    return new Response(JSON.stringify(body), { status: this.status, headers });
  }
}

/** The value of an object's answer, or its error thrown as an ApiError. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw ApiError.from(outcome.error);
  return outcome.value;
}

/** A zod failure as one readable sentence naming the field. */
export function invalid(error: ZodError): ApiError {
  const issue = error.issues[0];
  const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
  return new ApiError("invalid_request", `${where}${issue?.message ?? "invalid request"}`);
}

const CODE_BY_STATUS = Object.fromEntries(Object.entries(ERROR_STATUS).map(([code, status]) => [status, code])) as Record<
  number,
  ErrorCode
>;

/** Maps anything thrown to the contract's error body. */
export function toErrorResponse(err: unknown): Response {
  if (err instanceof ApiError) return err.toResponse();
  if (err instanceof HTTPException) {
    return new ApiError(CODE_BY_STATUS[err.status] ?? "invalid_request", err.message || "request refused").toResponse();
  }
  console.error("unhandled error", err);
  return new ApiError("internal", "internal error").toResponse();
}
