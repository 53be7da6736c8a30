/** Section 17: privacy settings and blocks, as clients send them. */
import { z } from "zod";

export const LAST_SEEN = ["everyone", "contacts", "nobody"] as const;
export const ADD_TO_GROUPS = ["everyone", "contacts"] as const;
/** Section 17: a group's earlier messages are for new members too ("shared"), or not (the default). */
export const HISTORIES = ["since_join", "shared"] as const;
export type History = (typeof HISTORIES)[number];

export const PrivacyBody = z.object({
  last_seen: z.enum(LAST_SEEN).optional().describe("who sees the caller's presence: everyone sharing a conversation, contacts only, or nobody"),
  add_to_groups: z.enum(ADD_TO_GROUPS).optional().describe("who may put the caller into groups"),
});

export const BlockBody = z.object({ user_id: z.string().min(1).max(128) });
