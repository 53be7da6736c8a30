/**
 * The per-conversation crypto layer. Everything the SDK sends passes `encode`, and
 * everything it hands out passes `decode`, chosen by the conversation's `encryption`.
 * Plain conversations use the identity codec; an MLS codec (CONTRACT.md section 10)
 * slots in here without the rest of the SDK changing.
 */
import { ChatError } from "./errors";
import type { MessageKind } from "../../protocol";
import { decodeMediaContent } from "./media";
import type { ChatMessage } from "./types";

export interface Encoded {
  kind: MessageKind;
  content: string;
}

export interface ConversationCodec {
  /** Turns the app's text into what goes on the wire. */
  encodeText(conversationId: string, text: string): Promise<Encoded>;
  /** Fills in `text` of a message read from the wire (in seq order within a conversation). */
  decode(message: ChatMessage): Promise<ChatMessage>;
}

export const plainCodec: ConversationCodec = {
  async encodeText(_conversationId, text) {
    return { kind: "text", content: text };
  },
  async decode(message) {
    if (message.deleted) return message;
    if (message.kind === "text") return { ...message, text: message.content };
    if (message.kind === "media") return { ...message, media: decodeMediaContent(message.content) };
    return message;
  },
};

/** Stands in for the MLS layer until it exists: encrypted conversations cannot be used yet. */
export const unavailableCodec: ConversationCodec = {
  async encodeText() {
    throw encryptionUnavailable();
  },
  async decode(message) {
    return message;
  },
};

export function encryptionUnavailable(): ChatError {
  return new ChatError(
    "encryption_unavailable",
    "end-to-end encrypted conversations are not supported by this SDK build yet; pass { encrypted: false }",
  );
}
