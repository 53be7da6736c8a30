/** Limits from CONTRACT.md section 2, read from `[vars]` with the contract's defaults; the Worker and the objects both read them. */

/**
 * What the config readers take: the Worker's `Env`, or a test's few vars. Values are
 * `unknown` because `wrangler types` declares each var as wrangler.toml's literal, which a
 * deployment or a test may override; the extra names are vars only some setups set
 * (secrets, .dev.vars), so `wrangler types` does not list them.
 */
export type Vars = { readonly [K in keyof Env | OptionalVar]?: unknown };
type OptionalVar = "PUSH_ALLOW_LOOPBACK_HTTP" | "TURN_KEY_ID" | "TURN_KEY_API_TOKEN" | "TURN_API_BASE" | "BENCH_METER";

/** A var's text, or undefined when unset or not a string. */
export function readVar(env: Vars, name: keyof Vars): string | undefined {
  const value = env[name];
  return typeof value === "string" ? value : undefined;
}

export interface Limits {
  maxContentChars: number;
  maxBodyBytes: number;
  maxGroupMembers: number;
  sendRatePerMinute: number;
  maxMediaBytes: number;
  /** One-request media uploads (section 9); larger files go in parts. */
  maxMediaSingleBytes: number;
  /** The part size of multipart uploads: R2 wants every part but the last the same size, at least 5 MiB. */
  mediaPartBytes: number;
  /** An upload not completed, or media no message references, this long after upload is deleted. */
  mediaUploadTtlSeconds: number;
  tokenTtlSeconds: number;
  /** Open device sockets per user, and open sockets per user on one conversation. */
  maxSocketsPerUser: number;
  /** Origins allowed to open WebSockets; empty allows any (CSWSH protection when set). */
  allowedOrigins: string[];
  /** Unclaimed MLS key packages held per device (section 10). */
  maxKeyPackages: number;
  /** Key-package claims per user per minute (one token per claim request). */
  keyPackageClaimsPerMinute: number;
  /** Body of POST …/mls/commits: a commit, the new epoch's group info (whole ratchet tree) and a welcome. */
  maxCommitBodyBytes: number;
  /** Failed logins per minute, per handle and (separately) per client address. */
  loginFailuresPerMinute: number;
  /** Registrations per minute per client address. */
  registrationsPerMinute: number;
  /** `GET /v1/users?handle=` per user per minute. */
  userLookupsPerMinute: number;
  /** Conversations (direct or group) created per user per minute. */
  conversationsPerMinute: number;
  /** Members put into conversations per user per minute, at creation or added later (one token per member). */
  membersAddedPerMinute: number;
  /** Typing frames per conversation socket per minute. */
  typingFramesPerMinute: number;
  /** Call frames per conversation socket per minute. */
  callFramesPerMinute: number;
  /** Live (not revoked) devices per user: a login beyond → 422. */
  maxDevicesPerUser: number;
  /** Open conversation sockets per user across all conversations → 422. */
  maxConversationSocketsPerUser: number;
  /** Section 13: the sender may edit a message within this long of sending. */
  editWindowSeconds: number;
  /** Section 14: the newest messages a conversation keeps in its own storage; older ones move to R2. */
  hotMessages: number;
  /** Section 14: messages per R2 segment (moved together, from the conversation's alarm). */
  historySegmentMessages: number;
  /** Users one user may block (section 17) → 422. */
  maxBlocksPerUser: number;
}

/** R2 refuses to complete a multipart upload whose parts (but the last) are smaller. */
export const R2_MIN_PART_BYTES = 5 * 1024 * 1024;

/** A positive integer var, floored; anything else is the default. */
export const positiveInt = (value: string | undefined, fallback: number): number => {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : fallback;
};

export function limits(env: Vars): Limits {
  const s = (k: keyof Vars) => readVar(env, k);
  const int = positiveInt;
  return {
    maxContentChars: int(s("MAX_CONTENT_CHARS"), 100_000),
    maxBodyBytes: int(s("MAX_BODY_BYTES"), 256 * 1024),
    maxGroupMembers: int(s("MAX_GROUP_MEMBERS"), 256),
    sendRatePerMinute: int(s("SEND_RATE_PER_MINUTE"), 100),
    maxMediaBytes: int(s("MAX_MEDIA_BYTES"), 100 * 1024 * 1024),
    maxMediaSingleBytes: int(s("MAX_MEDIA_SINGLE_BYTES"), 32 * 1024 * 1024),
    mediaPartBytes: Math.max(R2_MIN_PART_BYTES, int(s("MEDIA_PART_BYTES"), 8 * 1024 * 1024)),
    mediaUploadTtlSeconds: int(s("MEDIA_UPLOAD_TTL_SECONDS"), 24 * 3600),
    tokenTtlSeconds: int(s("TOKEN_TTL_SECONDS"), 30 * 24 * 3600),
    maxSocketsPerUser: int(s("MAX_SOCKETS_PER_USER"), 20),
    maxKeyPackages: int(s("MAX_KEY_PACKAGES"), 100),
    keyPackageClaimsPerMinute: int(s("KEY_PACKAGE_CLAIMS_PER_MINUTE"), 60),
    maxCommitBodyBytes: int(s("MAX_COMMIT_BODY_BYTES"), 1024 * 1024),
    loginFailuresPerMinute: int(s("LOGIN_FAILURES_PER_MINUTE"), 10),
    registrationsPerMinute: int(s("REGISTRATIONS_PER_MINUTE"), 30),
    userLookupsPerMinute: int(s("USER_LOOKUPS_PER_MINUTE"), 60),
    conversationsPerMinute: int(s("CONVERSATIONS_PER_MINUTE"), 30),
    membersAddedPerMinute: int(s("MEMBERS_ADDED_PER_MINUTE"), 600),
    typingFramesPerMinute: int(s("TYPING_FRAMES_PER_MINUTE"), 60),
    callFramesPerMinute: int(s("CALL_FRAMES_PER_MINUTE"), 300),
    maxDevicesPerUser: int(s("MAX_DEVICES_PER_USER"), 100),
    maxConversationSocketsPerUser: int(s("MAX_CONVERSATION_SOCKETS_PER_USER"), 50),
    editWindowSeconds: int(s("EDIT_WINDOW_SECONDS"), 900),
    hotMessages: int(s("HOT_MESSAGES"), 5_000),
    historySegmentMessages: int(s("HISTORY_SEGMENT_MESSAGES"), 1_000),
    maxBlocksPerUser: int(s("MAX_BLOCKS_PER_USER"), 1000),
    allowedOrigins: (s("ALLOWED_ORIGINS") ?? "")
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean),
  };
}
