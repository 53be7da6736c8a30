/**
 * The wire protocol of CONTRACT.md: request bodies, WebSocket frames and the shapes
 * the server returns. Shared by the Worker, the Durable Objects, the tests and the SDK.
 * Every input is parsed with these schemas before anything trusts it.
 */
import { z } from "zod";

export * from "./errors";
export * from "./frames";
export * from "./media";
export * from "./privacy";
export * from "./push";
import { HISTORIES, type History } from "./privacy";

/** The kinds a client may send. */
export const MESSAGE_KINDS = ["text", "media", "encrypted"] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];
/** Kinds only the server stores, in the same order (sections 10 and 11); they never count as unread. */
export const SERVER_MESSAGE_KINDS = ["mls_commit", "call"] as const;
export type ServerMessageKind = (typeof SERVER_MESSAGE_KINDS)[number];
/** Every kind a stored message can have. */
export const STORED_MESSAGE_KINDS = [...MESSAGE_KINDS, ...SERVER_MESSAGE_KINDS] as const;
export type StoredMessageKind = MessageKind | ServerMessageKind;

/** Section 10: how a conversation's messages are protected. */
export const ENCRYPTIONS = ["none", "mls"] as const;
export type Encryption = (typeof ENCRYPTIONS)[number];

/**
 * Strings must be well-formed Unicode: SQLite stores UTF-8, where a lone surrogate would
 * come back as U+FFFD, so an id acked to the client would differ from the one stored.
 */
const text = () => z.string().refine((s) => s.isWellFormed(), "must be well-formed Unicode (no lone surrogates)");
const id = text().min(1).max(128);
/**
 * A name people see (display, device and group names): no control characters (C0, DEL, C1,
 * NUL included) and no bidirectional overrides, embeddings, isolates or marks, which can make
 * a name read as another or flip the text around it. Joiners such as ZWJ (U+200D, emoji
 * sequences) are fine.
 */
const shownName = () =>
  text().refine(
    (s) => !/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(s),
    "must not contain control characters or bidirectional formatting characters",
  );
const seq = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

// ---- HTTP bodies -------------------------------------------------------------

export const RegisterBody = z.object({
  handle: text().regex(/^[a-z0-9_]{3,32}$/, "handle must be 3-32 characters of a-z, 0-9 and _"),
  password: text().min(8, "password must be at least 8 characters").max(1024),
  display_name: shownName().min(1).max(128).optional(),
});

// Generous bounds: an over-long handle or password is simply wrong (401), like any other.
export const LoginBody = z.object({
  handle: z.string().max(4096),
  password: z.string().max(4096),
  device_name: shownName().min(1).max(128).optional(),
});

export const CreateConversationBody = z.discriminatedUnion("type", [
  z.object({ type: z.literal("direct"), peer: id, encryption: z.enum(ENCRYPTIONS).optional().describe('default "none"') }),
  z.object({
    type: z.literal("group"),
    name: shownName().min(1).max(256),
    // Bounded far above the group limit so the 422 check sees oversized lists; 400 past this.
    members: z.array(id).max(10_000),
    encryption: z.enum(ENCRYPTIONS).optional().describe('default "none"'),
    history: z.enum(HISTORIES).optional().describe('section 17: "shared" shows new members the earlier messages too; default "since_join"'),
  }),
]);

// ---- MLS (section 10): binary structures are base64url of their TLS encoding ----

/** Base64url without padding; the bounds are far above any real structure (the body limit applies first). */
const b64url = (max: number) =>
  z.string().max(max).regex(/^[A-Za-z0-9_-]+$/, "must be base64url without padding");

export const UploadKeyPackagesBody = z.object({
  key_packages: z.array(b64url(16_384)).max(1_000).describe("MLSMessage-wrapped KeyPackages of the calling device"),
  last_resort: b64url(16_384).optional().describe("kept and handed out whenever the device has no other package left"),
});

export const ClaimKeyPackagesBody = z.object({ user_ids: z.array(id).min(1).max(256) });

export const CommitBody = z.object({
  epoch: seq.describe("the group's current epoch, which the commit moves on from (0 before the first commit)"),
  commit: b64url(4 * 1024 * 1024).describe("an MLSMessage holding a PublicMessage with a Commit"),
  group_info: b64url(4 * 1024 * 1024).describe("the new epoch's GroupInfo, with the ratchet_tree extension"),
  welcome: b64url(4 * 1024 * 1024).optional().describe("for the devices the commit adds"),
  client_message_id: id,
});
export type CommitInput = z.infer<typeof CommitBody>;

export const AddMembersBody = z.object({ user_ids: z.array(id).min(1).max(10_000) });

/** Content length is checked against the configured limit separately, so that it answers 413. */
export const SendBody = z.object({
  client_message_id: id,
  kind: z.enum(MESSAGE_KINDS),
  content: text(),
  media_id: id.optional(),
});
export type SendInput = z.infer<typeof SendBody>;

export const MarkerBody = z.object({ up_to_seq: seq });

// ---- Section 13: edits, deletes and reactions --------------------------------

/** Content length is checked against the configured limit separately (413), as for sends. */
export const EditBody = z.object({ content: text() });
/** An emoji, or ciphertext in an encrypted conversation: at most 64 UTF-16 units, like content's limit. */
export const Reaction = text().min(1).max(64);
export const ReactionBody = z.object({ reaction: Reaction });
/** `{"👍":[USER_ID…]}`: one reaction per user per message. */
export type Reactions = Record<string, string[]>;

// ---- Query strings -----------------------------------------------------------

const intParam = z
  .string()
  .regex(/^\d{1,15}$/, "must be a non-negative integer")
  .transform(Number);

export const HistoryQuery = z
  .object({
    after_seq: intParam.optional(),
    before_seq: intParam.optional(),
    limit: intParam.pipe(z.number().min(1).max(200)).optional().describe("1 to 200, default 50"),
  })
  .refine((q) => q.after_seq === undefined || q.before_seq === undefined, {
    message: "give after_seq or before_seq, not both",
  });
export type HistoryQuery = z.infer<typeof HistoryQuery>;

/** `?since=` of the device socket. Cursors are opaque to clients; the server's are its inbox log's row ids. */
export const CursorParam = z.string().regex(/^\d{1,15}$/).transform(Number);

export const ListQuery = z.object({
  limit: intParam.pipe(z.number().min(1).max(200)).optional().describe("1 to 200, default 50"),
  cursor: z.string().max(512).optional(),
});

// ---- Shapes returned ---------------------------------------------------------

export interface Message {
  message_id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  sender_device_id: string;
  client_message_id: string;
  kind: StoredMessageKind;
  content: string;
  media_id?: string;
  created_at: number;
  /** Section 13: set once the sender edited the content. */
  edited_at?: number;
  /** Section 13: present (true) once deleted; `content` is then "" and media_id is gone. */
  deleted?: true;
  /** Section 13: present only while the message has at least one reaction. */
  reactions?: Reactions;
}

export type Role = "admin" | "member";
export interface Member {
  user_id: string;
  role: Role;
}

export interface Conversation {
  conversation_id: string;
  type: "direct" | "group";
  name: string | null;
  members: Member[];
  encryption: Encryption;
  /** Section 17: whether members added later see the earlier messages. */
  history: History;
  created_at: number;
}

export interface ConversationSummary extends Omit<Conversation, "created_at"> {
  created_at: number;
  last_message: Message | null;
  unread_count: number;
  last_read_seq: number;
  /** Section 17: a direct conversation a non-contact started, until the caller sends in it. */
  request: boolean;
}

export type ReceiptKind = "delivered" | "read";

// ---- Conversation socket: client → server -----------------------------------

export const ClientFrame = z.discriminatedUnion("type", [
  SendBody.extend({ type: z.literal("send") }),
  z.object({ type: z.literal("delivered"), up_to_seq: seq }),
  z.object({ type: z.literal("read"), up_to_seq: seq }),
  z.object({ type: z.literal("typing"), state: z.enum(["start", "stop"]) }),
  z.object({ type: z.literal("ping") }),
  z.object({
    type: z.literal("call"),
    call_id: id,
    action: z.enum(["ring", "accept", "decline", "offer", "answer", "ice", "hangup"]),
    to_device_id: id.optional(),
    payload: z.unknown().optional(),
  }),
  // Section 13. client_message_id is optional here and only names the frame in an error's `ref`.
  z.object({ type: z.literal("edit"), seq, content: text(), client_message_id: id.optional() }),
  z.object({ type: z.literal("delete"), seq, client_message_id: id.optional() }),
  z.object({ type: z.literal("react"), seq, reaction: Reaction.nullable(), client_message_id: id.optional() }),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;

// Conversation socket, server → client: protocol/frames.ts.

// ---- Device socket: server → client -----------------------------------------

/** What a conversation owes a member's inbox; the inbox turns it into a device event. */
export type FeedEvent =
  | { type: "message"; message: Message }
  /** Section 13: the message as it now is, after an edit, a delete or a reaction. */
  | { type: "message_updated"; message: Message }
  | { type: "receipt"; conversation_id: string; user_id: string; kind: ReceiptKind; up_to_seq: number }
  | { type: "conversation"; conversation: Conversation }
  | { type: "removed"; conversation_id: string }
  /** For one device of the member (`to_device_id`), which the inbox keeps to itself. */
  | { type: "mls_welcome"; conversation_id: string; epoch: number; welcome: string; to_device_id: string }
  /**
   * Internal, never streamed to devices: tells a member's inbox where its feed starts
   * (`join_seq`), so its list can show the latest message and count the earlier unread
   * ones; `own_seqs` are the joiner's own messages above their read marker up to then.
   */
  | {
      type: "joined";
      conversation_id: string;
      join_seq: number;
      own_seqs: number[];
      last_message: Message | null;
      /** Section 17: the messages up to join_seq are not the joiner's to see (nor unread). */
      earlier_hidden?: boolean;
    }
  /** Internal, never streamed: section 17 flags of one member's list entry. */
  | { type: "list_flags"; conversation_id: string; request?: boolean; hidden?: boolean };

/**
 * Events of one device only (section 10), stored in the user's log with the device they
 * are for; other devices of the user never see them.
 */
export type DeviceOnlyEvent =
  | { type: "key_packages_low"; count: number }
  | { type: "mls_welcome"; conversation_id: string; epoch: number; welcome: string };

export type DeviceEvent = (Exclude<FeedEvent, { type: "joined" | "list_flags" | "mls_welcome" }> | DeviceOnlyEvent) & { cursor: string };
