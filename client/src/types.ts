/**
 * The shapes the SDK hands out. Wire types come from protocol/ as type-only imports, so
 * the built SDK carries none of the server's code (zod included).
 */
import type { ADD_TO_GROUPS, Conversation, ConversationSummary, LAST_SEEN, Member, Message, MessageKind, ReceiptKind, Role } from "../../protocol";
import type { ChatError } from "./errors";
import type { ConnectionState } from "./socket";

export type { Conversation, ConversationSummary, Member, Message, MessageKind, ReceiptKind, Role, ConnectionState };

/** A message's local status; `delivered` and `read` mean every other member's device has. */
export type MessageStatus = "pending" | "sent" | "delivered" | "read" | "failed";

/** A message as the SDK hands it out: the wire message plus its plaintext. */
export interface ChatMessage extends Omit<Message, "kind"> {
  /** `text`, `media`, `encrypted`, or a server kind (`mls_commit`, `call`) or one newer than this SDK. */
  kind: MessageKind | (string & {});
  /** The plaintext of a text message (decrypted, in an encrypted conversation). */
  text?: string;
  // edited_at, deleted (content "" and no `text`) and reactions come with Message (section 13).
  /**
   * A media message's file name and caption, as the SDK sends them (`media_id` names the bytes);
   * in an encrypted conversation also the file key (`key`, `iv`, `sha256`, `size`), which
   * `fetchMedia(conversationId, mediaId, message.media)` uses to decrypt.
   */
  media?: { name?: string; caption?: string; type?: string; key?: string; iv?: string; sha256?: string; size?: number };
}

export interface User {
  user_id: string;
  handle: string;
  display_name: string | null;
}

export interface Me extends User {
  devices: { device_id: string; name: string | null; created_at: number }[];
}

/** Section 17: who sees this user's presence (`last_seen`) and who may add them to groups. */
export interface PrivacySettings {
  last_seen: (typeof LAST_SEEN)[number];
  add_to_groups: (typeof ADD_TO_GROUPS)[number];
}

/** Section 17: one entry of `chat.blocks.list()`. */
export interface BlockedUser {
  user_id: string;
  created_at: number;
}

export interface Presence {
  status: "online" | "offline" | "unknown";
  last_seen: number | null;
}

/** A send not yet acknowledged, as stored in the outbox. */
export interface OutboxEntry {
  client_message_id: string;
  conversation_id: string;
  kind: MessageKind;
  /** What goes on the wire: the text, or its ciphertext. */
  content: string;
  /** The plaintext, for showing the pending message. */
  text?: string;
  media_id?: string;
  /** An encrypted conversation's media message: what its PrivateMessage will carry. */
  sealed?: import("./media").SealedMediaContent;
  /** Whether `kind`/`content` are final (encrypted, in an encrypted conversation). */
  encoded: boolean;
  created_at: number;
  attempts: number;
}

export interface Receipt {
  conversation_id: string;
  user_id: string;
  kind: ReceiptKind;
  up_to_seq: number;
}

export interface StatusChange {
  conversation_id: string;
  client_message_id: string;
  status: MessageStatus;
  /** Set once acknowledged. */
  message?: ChatMessage;
  error?: ChatError;
}

export interface TypingEvent {
  conversation_id: string;
  user_id: string;
  device_id?: string;
  state: "start" | "stop";
}

export interface PresenceEvent {
  conversation_id: string;
  user_id: string;
  status: "online" | "offline" | "unknown";
  last_seen: number | null;
}

/** Every event `chat.on()` knows, by name. */
export interface ChatEvents extends Record<string, unknown> {
  /** Every message once per client, in seq order per conversation. */
  message: ChatMessage;
  /**
   * A message was edited, deleted or reacted to (`message_updated`, section 13): the whole
   * message as it now is (`deleted: true` with no text once deleted). Once per change, in order.
   */
  updated: ChatMessage;
  receipt: Receipt;
  /** Added to a conversation, or it changed. */
  conversation: Conversation;
  /** No longer a member (device event, or a conversation socket closed with 4403). */
  removed: { conversation_id: string };
  state: ConnectionState;
  /** Outbox progress: pending → sent, or failed. */
  status: StatusChange;
  typing: TypingEvent;
  presence: PresenceEvent;
  /** The outbox changed (an entry was added, acknowledged or dropped). */
  outbox: OutboxEntry[];
  /** Every device-socket event as it arrived, including types this SDK does not know. */
  event: { type: string; cursor?: string } & Record<string, unknown>;
  error: ChatError;
  /** Someone is calling: `call.accept(stream)` or `call.decline()`. */
  call: import("./calls").Call;
}
