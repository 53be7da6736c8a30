/**
 * The per-conversation crypto layer. Everything the SDK sends passes `encode`, and
 * everything it hands out passes `decode`, chosen by the conversation's `encryption`.
 * Plain conversations use the identity codec; `encryption: "mls"` ones the MLS codec
 * (CONTRACT.md section 10, client/src/mls/).
 */
import type { MessageKind } from "../../protocol";
import type { MlsLayer } from "./mls/layer";
import { decodeMediaContent } from "./media";
import type { ChatMessage } from "./types";

export interface Encoded {
  kind: MessageKind;
  content: string;
}

export interface ConversationCodec {
  /** Turns the app's text into what goes on the wire (once per outbox entry: retries resend the result). */
  encodeText(conversationId: string, text: string, clientMessageId: string): Promise<Encoded>;
  /**
   * Fills in `text` of a message read from the wire. `live`: from the device stream, once
   * per message and in seq order within a conversation (an MLS codec moves its group on).
   */
  decode(message: ChatMessage, live?: boolean): Promise<ChatMessage>;
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

/** MLS conversations: PrivateMessages out, commits applied and PrivateMessages decrypted in. */
export function mlsCodec(layer: MlsLayer): ConversationCodec {
  return {
    encodeText: (conversationId, text, clientMessageId) => layer.encodeText(conversationId, text, clientMessageId),
    decode: (message, live = false) => layer.decode(message, live),
  };
}

/** Whether a message can only be read through the MLS layer, whatever is known of its conversation. */
export const isMlsKind = (kind: string): boolean => kind === "encrypted" || kind === "mls_commit";
