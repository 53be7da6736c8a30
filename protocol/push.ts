/** Section 8: Web Push, the subscription a device registers and the payload a push carries. */
import { z } from "zod";

const base64url = z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/, "must be base64url");

/** A browser's PushSubscription JSON (extra fields such as expirationTime are ignored). */
export const PushSubscriptionBody = z.object({
  endpoint: z.string().url().max(2048),
  keys: z.object({ p256dh: base64url.max(256), auth: base64url.max(64) }),
});
export type PushSubscriptionBody = z.infer<typeof PushSubscriptionBody>;

/** Never the content, only where to fetch it from; `kind: "media"` for media messages only (the app says "sent a file"). */
export type PushPayload =
  | { type: "message"; conversation_id: string; seq: number; kind?: "media" }
  | { type: "call"; conversation_id: string; call_id: string };
