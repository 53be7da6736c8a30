/** The shapes of fuzz cases and what the oracle expects of each. */
import type { ErrorCode } from "./contract.ts";
import type { Attacker } from "./world.ts";

/** A message send the oracle tracks, whatever the answer: to prove rejected sends are never stored. */
export interface SendRecord {
  conv: string;
  sender: string;
  cmid: unknown;
  content: unknown;
}

export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** What a 2xx answer's semantic check reports: a contract violation, or something wrongly stored. */
export interface PostProblem {
  kind: "violation" | "wrong";
  detail: string;
}

export interface CaseBase {
  index: number;
  category: string;
  variant: string;
}

export interface HttpCase extends CaseBase {
  kind: "http";
  actor: string | null;
  method: string;
  /** Path and query, from the origin (so it includes /v1). */
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array | { streamBytes: number };
  /** Acceptable statuses. */
  expect: number[];
  send?: SendRecord;
  /** A registration: rejected ones must not exist afterwards, accepted ones must be as sent. */
  register?: { handle: string; display_name?: unknown; acceptable: boolean };
  /** Conversations a 2xx creates, to inspect at the end. */
  createsConversation?: boolean;
  post?: (res: HttpResult) => PostProblem[];
}

export type SocketSlot = "device" | "own" | "mixed";

export interface WsFrameCase extends CaseBase {
  kind: "ws";
  actor: Attacker;
  socket: SocketSlot;
  frames: (string | Uint8Array)[];
  /** error: exactly one error frame; none: no error frame; maybe: at most one. */
  expect: "error" | "none" | "maybe";
  codes?: ErrorCode[];
  /** The ref an error frame must carry; undefined: the frame's client_message_id or null. */
  ref?: string | null;
  /** How many of `frames` are pings that get a pong. */
  pongs: number;
  /** A send frame that passes validation: answered by `sent`, or by an error naming it. */
  send?: SendRecord & { cmid: string; content: string; errorCodes: ErrorCode[]; /** The contract refuses it: a `sent` is a wrong write. */ mustFail?: boolean };
}

export interface HandshakeCase extends CaseBase {
  kind: "handshake";
  actor: string | null;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  expect: number[];
}

export interface ExpiringCase extends CaseBase {
  kind: "expiring";
  actor: Attacker;
  target: "device" | "conv";
  lifetimeSeconds: number;
}

/** A frame over the runtime's message limit, on a socket of its own (closing it must not hold up other cases). */
export interface OversizedCase extends CaseBase {
  kind: "oversized";
  actor: Attacker;
  target: "device" | "conv";
  bytes: number;
}

export interface FloodCase extends CaseBase {
  kind: "flood";
}

export type Case = HttpCase | WsFrameCase | HandshakeCase | ExpiringCase | OversizedCase | FloodCase;

/** A short, JSON-safe description of a case for the report. */
export function describeCase(c: Case): Record<string, unknown> {
  const base = { index: c.index, category: c.category, variant: c.variant };
  const preview = (b: unknown) =>
    typeof b === "string" ? (b.length > 300 ? `${b.slice(0, 300)}… (${b.length} chars)` : b) : b instanceof Uint8Array ? `<${b.length} bytes>` : b;
  switch (c.kind) {
    case "http":
      return { ...base, method: c.method, path: c.path.length > 300 ? `${c.path.slice(0, 300)}…` : c.path, expect: c.expect, body: preview(c.body), headers: redactHeaders(c.headers) };
    case "ws":
      return { ...base, socket: c.socket, actor: c.actor.s.user_id, frames: c.frames.slice(0, 3).map(preview), frameCount: c.frames.length, expect: c.expect, codes: c.codes };
    case "handshake":
      return { ...base, path: c.path, query: Object.fromEntries(Object.entries(c.query).map(([k, v]) => [k, v.length > 60 ? `${v.slice(0, 60)}…` : v])), expect: c.expect };
    case "expiring":
      return { ...base, target: c.target, actor: c.actor.s.user_id };
    case "oversized":
      return { ...base, target: c.target, bytes: c.bytes, actor: c.actor.s.user_id };
    case "flood":
      return base;
  }
}

function redactHeaders(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k] = v.length > 80 ? `${v.slice(0, 80)}… (${v.length} chars)` : v;
  return out;
}
