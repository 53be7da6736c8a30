/** Request bodies: size-limited, JSON-parsed, then zod-validated, or a contract error. */
import type { Context } from "hono";
import type { z } from "zod";
import { ApiError, invalid } from "../errors";
import type { AppEnv } from "../types";
import { limits } from "../../shared/config";

/** `maxBytes` overrides the body limit for routes that need more (MLS commits). */
export async function readJson<S extends z.ZodType>(c: Context<AppEnv>, schema: S, maxBytes?: number): Promise<z.infer<S>> {
  const max = maxBytes ?? limits(c.env).maxBodyBytes;
  const bytes = await readCapped(c.req.raw, max);
  // A JSON body only as application/json: a form or text/plain body (what a cross-site form
  // can send without a preflight) is refused whatever it contains.
  const type = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") throw new ApiError("invalid_request", "content-type must be application/json");
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ApiError("invalid_request", "body is not valid JSON");
  }
  return parse(schema, raw);
}

/**
 * The body's bytes, refusing it as soon as it passes `max`: a chunked upload without a
 * content-length is not buffered whole before the answer.
 */
export async function readCapped(request: Request, max: number): Promise<Uint8Array> {
  const tooLarge = () => new ApiError("too_large", `request body over ${max} bytes`);
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > max) throw tooLarge();
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

export function parse<S extends z.ZodType>(schema: S, raw: unknown): z.infer<S> {
  const result = schema.safeParse(raw);
  if (!result.success) throw invalid(result.error);
  return result.data;
}
