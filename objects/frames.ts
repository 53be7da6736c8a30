/** Parsing of client WebSocket frames, shared by both objects. */
import { ClientFrame, type ErrorBody } from "../protocol";

export type ParsedFrame = { frame: ClientFrame } | { error: ErrorBody; ref: string | null };

/** Parses one text frame with zod; a failure names the frame's client_message_id as `ref` when it has one. */
export function parseFrame(data: string | ArrayBuffer, maxBytes: number): ParsedFrame {
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
