/** Request bodies: size-limited, JSON-parsed, then zod-validated, or a contract error. */
import type { Context } from "hono";
import type { z } from "zod";
import { ApiError, invalid } from "../errors";
import type { AppEnv } from "../types";
import { limits } from "./config";

export async function readJson<S extends z.ZodType>(c: Context<AppEnv>, schema: S): Promise<z.infer<S>> {
  const max = limits(c.env as unknown as Record<string, unknown>).maxBodyBytes;
  const declared = Number(c.req.header("content-length"));
  if (Number.isFinite(declared) && declared > max) throw new ApiError("too_large", `request body over ${max} bytes`);
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength > max) throw new ApiError("too_large", `request body over ${max} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ApiError("invalid_request", "body is not valid JSON");
  }
  return parse(schema, raw);
}

export function parse<S extends z.ZodType>(schema: S, raw: unknown): z.infer<S> {
  const result = schema.safeParse(raw);
  if (!result.success) throw invalid(result.error);
  return result.data;
}
