/**
 * Server → client WebSocket frames (CONTRACT.md sections 6, 7, 11 and 13): what the
 * conversation socket and the device socket send. Every send site is typed against these
 * unions, so a frame that is not here cannot go out.
 */
import type { ErrorBody, ErrorCode } from "./errors";
import type { ClientFrame, DeviceEvent, Message, ReceiptKind } from "./index";

/** Section 1: a bad frame's answer; `ref` is the frame's client_message_id or null. */
export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  message: string;
  ref: string | null;
  /** Seconds, for `rate_limited` (the socket's `retry-after`). */
  retry_after?: number;
}

export const errorFrame = (error: ErrorBody, ref: string | null): ErrorFrame => ({
  type: "error",
  code: error.code,
  message: error.message,
  ref,
  ...(error.retryAfter !== undefined ? { retry_after: error.retryAfter } : {}),
});

// ---- Section 7: presence -----------------------------------------------------

/** A user's presence: `GET /v1/users/{id}/presence`, and what an inbox reports. */
export interface Presence {
  status: "online" | "offline";
  /** When the user's last device socket closed; null if never online. */
  last_seen: number | null;
}

/** Section 17: what a viewer who may not see a user's presence is told instead. */
export const UNKNOWN_PRESENCE = { status: "unknown", last_seen: null } as const;

export interface PresenceFrame {
  type: "presence";
  user_id: string;
  status: Presence["status"] | typeof UNKNOWN_PRESENCE.status;
  last_seen: number | null;
}

// ---- Section 11: calls -------------------------------------------------------

export type CallAction = Extract<ClientFrame, { type: "call" }>["action"];

/** A member's call frame as relayed to the others: unchanged but for the sender's ids. */
export type CallRelayFrame = Extract<ClientFrame, { type: "call" }> & { from_user_id: string; from_device_id: string };

/** What the server itself says about a call: a user's other devices stop ringing, or nobody answered. */
export interface CallNoticeFrame {
  type: "call";
  call_id: string;
  action: "answered_elsewhere" | "missed";
}

/** Device sockets carry every conversation, so a call frame there also names its own (ephemeral: no cursor). */
export type DeviceCallFrame = (CallRelayFrame | CallNoticeFrame) & { conversation_id: string };

/** How a call ended, in the `kind:"call"` message that records it. */
export type CallOutcome = "completed" | "missed" | "declined" | "cancelled";

/** The `content` (as JSON) of a `kind:"call"` message; `answered_at` (an extension) lets clients show the talk time. */
export interface CallEventContent {
  call_id: string;
  started_at: number;
  ended_at: number;
  outcome: CallOutcome;
  answered_at?: number;
}

// ---- The two sockets ---------------------------------------------------------

export interface TypingFrame {
  type: "typing";
  user_id: string;
  device_id: string;
  state: "start" | "stop";
  /** Set on `start`: when the indicator lapses unless renewed. */
  expires_at?: number;
}

export interface PongFrame {
  type: "pong";
}

/** Section 6: the conversation socket. */
export type ConversationServerFrame =
  | { type: "sent"; client_message_id: string; message: Message }
  | { type: "message"; message: Message }
  | { type: "message_updated"; message: Message }
  | { type: "receipt"; conversation_id: string; user_id: string; kind: ReceiptKind; up_to_seq: number }
  | TypingFrame
  | PresenceFrame
  | PongFrame
  | ErrorFrame
  | CallRelayFrame
  | CallNoticeFrame;

/** Section 6: the device socket, logged events (with a cursor) and ephemeral call frames. */
export type DeviceServerFrame = DeviceEvent | DeviceCallFrame | PongFrame | ErrorFrame;

export type ServerFrame = ConversationServerFrame | DeviceServerFrame;

// ---- Serialized frames -------------------------------------------------------

declare const frameOf: unique symbol;

/**
 * A frame already turned into JSON text: serialized once and sent to many sockets, or
 * handed between objects. The brand keeps the frame's type, so only text produced from a
 * typed frame can be sent as one.
 */
export type Wire<F> = string & { readonly [frameOf]: F };

export const serialize = <F extends ServerFrame>(frame: F): Wire<F> => JSON.stringify(frame) as Wire<F>;
