/** The edge-chat client SDK: `ChatClient` and what it hands out. */
export { ChatClient, SESSION_KEY } from "./client";
export type { ClientOptions, CreateOptions, HistoryOptions, LoginOptions, RegisterOptions, Session } from "./client";
export { Call } from "./calls";
export type { CallAction, CallEndReason, CallEvents, CallFrame, CallState } from "./calls";
export { OpenConversation } from "./conversation";
export type { OpenConversationEvents } from "./conversation";
export { ChatError } from "./errors";
export { decodeMediaContent } from "./media";
export type { MediaContent, MediaData, UploadedMedia } from "./media";
export type { ErrorCode } from "./errors";
export type { BlocksApi, PrivacyApi } from "./privacy";
export { MemoryStorage, IndexedDBStorage } from "./storage";
export type { ChatStorage } from "./storage";
export { ReconnectingSocket } from "./socket";
export type { ConnectionState, CloseVerdict, HeartbeatOptions } from "./socket";
export type { BackoffOptions } from "./backoff";
export type { ConversationCodec, Encoded } from "./codec";
export type * from "./types";
