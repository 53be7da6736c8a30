/**
 * The shapes the server answers, as zod schemas, for the OpenAPI document (CONTRACT.md
 * section 15). The TypeScript interfaces in ./index stay the source the code is written
 * against; the checks at the bottom fail to compile if a schema and its interface drift.
 *
 * Schemas with a `meta({ id })` become named components (`#/components/schemas/<id>`).
 * Not re-exported from ./index: the SDK imports protocol's types only, and need not
 * carry these.
 */
import { z } from "zod";
import type { Conversation, ConversationSummary, ErrorCode, MediaInfo, Member, Message, Presence, UploadStarted } from "./index";
import { ENCRYPTIONS, ERROR_STATUS, HISTORIES, STORED_MESSAGE_KINDS } from "./index";

const seq = z.number().int().nonnegative();
const time = z.number().describe("milliseconds since the Unix epoch");

export const MessageSchema = z
  .object({
    message_id: z.string(),
    conversation_id: z.string(),
    seq: seq.describe("the conversation's order: 1, 2, 3, … with no gaps"),
    sender_id: z.string(),
    sender_device_id: z.string(),
    client_message_id: z.string(),
    kind: z.enum(STORED_MESSAGE_KINDS).describe("clients send text, media or encrypted; the server stores mls_commit and call; clients ignore kinds they do not know"),
    content: z.string(),
    media_id: z.string().optional(),
    created_at: time,
    edited_at: time.optional().describe("section 13: when the sender last edited the content"),
    deleted: z.literal(true).optional().describe('section 13: the message was deleted; content is "" and media_id gone'),
    reactions: z
      .record(z.string(), z.array(z.string()))
      .optional()
      .describe("section 13: reaction → the user ids who gave it; absent when there is none"),
  })
  .meta({ id: "Message" });

export const MemberSchema = z
  .object({ user_id: z.string(), role: z.enum(["admin", "member"]) })
  .meta({ id: "Member" });

const conversationFields = {
  conversation_id: z.string(),
  type: z.enum(["direct", "group"]),
  name: z.string().nullable(),
  members: z.array(MemberSchema),
  encryption: z.enum(ENCRYPTIONS).describe('"mls": only kind "encrypted" messages and MLS commits (section 10)'),
  history: z.enum(HISTORIES).describe('"shared": members added later see the earlier messages too; "since_join": only those from when they (last) joined (section 17)'),
  created_at: time,
};

export const ConversationSchema = z.object(conversationFields).meta({ id: "Conversation" });

export const ConversationSummarySchema = z
  .object({
    ...conversationFields,
    last_message: MessageSchema.nullable(),
    unread_count: z.number().int().nonnegative().describe("messages from others above the caller's read marker"),
    last_read_seq: seq,
    request: z.boolean().describe("a direct conversation a non-contact started, until the caller sends a message in it (section 17)"),
  })
  .meta({ id: "ConversationSummary" });

export const ConversationPage = z.object({
  conversations: z.array(ConversationSummarySchema).describe("most recent activity first"),
  next_cursor: z.string().nullable().describe("pass as ?cursor= for the next page; null on the last"),
});

export const HistoryPage = z.object({
  messages: z.array(MessageSchema).describe("ascending seq"),
  next_after_seq: seq.nullable().describe("the page's last seq while more messages follow it, otherwise null"),
});

/** What register and login answer: a new device and its token. */
export const DeviceSession = z.object({ user_id: z.string(), device_id: z.string(), token: z.string() }).meta({ id: "DeviceSession" });

export const PublicUser = z
  .object({ user_id: z.string(), handle: z.string(), display_name: z.string().nullable() })
  .meta({ id: "PublicUser" });

export const Me = PublicUser.extend({
  devices: z.array(z.object({ device_id: z.string(), name: z.string().nullable(), created_at: time })),
}).meta({ id: "Me" });

export const PresenceSchema = z
  .object({
    status: z.enum(["online", "offline"]),
    last_seen: time.nullable().describe("when the user's last device socket closed; null if never online"),
  })
  .meta({ id: "Presence" });

/** What GET /users/{id}/presence answers: "unknown" to whom the user's last_seen setting or a block hides it from. */
export const VisiblePresenceSchema = z
  .object({
    status: z.enum(["online", "offline", "unknown"]),
    last_seen: time.nullable().describe("when the user's last device socket closed; null if never online or hidden"),
  })
  .meta({ id: "VisiblePresence" });

export const PrivacySettingsSchema = z
  .object({ last_seen: z.enum(["everyone", "contacts", "nobody"]), add_to_groups: z.enum(["everyone", "contacts"]) })
  .meta({ id: "PrivacySettings" });

export const BlockList = z.object({ blocks: z.array(z.object({ user_id: z.string(), created_at: time })).describe("oldest first") });

export const PushSubscriptionCreated = z.object({ device_id: z.string(), endpoint: z.string() });
export const VapidPublicKey = z.object({ key: z.string().describe("base64url, uncompressed P-256 point") });
export const Health = z.object({ ok: z.literal(true) });

export const KeyPackagesStored = z.object({ stored: z.number().int().nonnegative().describe("packages newly stored (repeats of stored ones are not)") });
export const KeyPackageCount = z.object({ count: z.number().int().nonnegative().describe("unclaimed, unexpired packages of the calling device, the last resort not counted") });
export const ClaimedKeyPackages = z.object({
  key_packages: z.array(z.object({ user_id: z.string(), device_id: z.string(), key_package: z.string().describe("base64url MLSMessage") })),
});
export const CommitAccepted = z.object({ epoch: z.number().int().nonnegative().describe("the epoch the commit made"), seq });
export const GroupInfoSchema = z.object({ epoch: z.number().int().nonnegative(), group_info: z.string().describe("base64url MLSMessage holding the epoch's GroupInfo") });

export const MediaSchema = z
  .object({
    media_id: z.string(),
    size: z.number().int().nonnegative(),
    content_type: z.string(),
    sha256: z.string().describe("lowercase hex SHA-256 of the stored bytes"),
  })
  .meta({ id: "Media" });
export const UploadStartedSchema = z.object({
  upload_id: z.string(),
  media_id: z.string(),
  part_size: z.number().int().positive().describe("every part's size but the last's"),
  part_count: z.number().int().positive(),
});
export const PartStored = z.object({ part: z.number().int().positive() });

/** The body of every non-2xx answer (CONTRACT.md section 1). */
export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
    }),
  })
  .meta({ id: "Error" });

// ---- The schemas describe exactly the interfaces ------------------------------

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Expect<T extends true> = T;
export type SchemasMatchInterfaces = [
  Expect<Same<z.infer<typeof MessageSchema>, Message>>,
  Expect<Same<z.infer<typeof MemberSchema>, Member>>,
  Expect<Same<z.infer<typeof ConversationSchema>, Conversation>>,
  Expect<Same<z.infer<typeof ConversationSummarySchema>, ConversationSummary>>,
  Expect<Same<z.infer<typeof PresenceSchema>, Presence>>,
  Expect<Same<z.infer<typeof MediaSchema>, MediaInfo>>,
  Expect<Same<z.infer<typeof UploadStartedSchema>, UploadStarted>>,
];
