/** Parsing of client WebSocket frames: the conversation socket's and the device socket's. */
import { ClientFrame, type ErrorBody } from "../protocol";

export type Parsed<T> = { frame: T } | { error: ErrorBody; ref: string | null };

/** Parses one conversation socket frame with zod; a failure names the frame's client_message_id as `ref` when it has one. */
export function parseFrame(data: string | ArrayBuffer, maxBytes: number): Parsed<ClientFrame> {
  if (typeof data !== "string") {
    return { error: { code: "invalid_request", message: "binary frames are not supported; send JSON text" }, ref: null };
  }
  // A UTF-16 unit is at most 3 UTF-8 bytes: count bytes only when the frame might be over.
  if (data.length * 3 > maxBytes && new TextEncoder().encode(data).byteLength > maxBytes) {
    return { error: { code: "too_large", message: `frame larger than ${maxBytes} bytes` }, ref: null };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return { error: { code: "invalid_request", message: "frame is not valid JSON" }, ref: null };
  }
  const ref =
    raw && typeof raw === "object" && typeof (raw as { client_message_id?: unknown }).client_message_id === "string"
      ? ((raw as { client_message_id: string }).client_message_id)
      : null;
  const parsed = ClientFrame.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    return { error: { code: "invalid_request", message: `${where}${issue?.message ?? "invalid frame"}` }, ref };
  }
  return { frame: parsed.data };
}

/** The device socket takes only `ping` (the runtime answers the exact text itself; this is for any other spelling). */
export function parseDeviceFrame(data: string | ArrayBuffer, maxBytes: number): Parsed<{ type: "ping" }> {
  if (typeof data === "string" && data.length <= maxBytes) {
    let raw: unknown;
    try {
      raw = JSON.parse(data);
    } catch {
      return { error: { code: "invalid_request", message: "frame is not valid JSON" }, ref: null };
    }
    if ((raw as { type?: unknown } | null)?.type === "ping") return { frame: { type: "ping" } };
  }
  return { error: { code: "invalid_request", message: "the device socket takes only ping frames" }, ref: null };
}
