/**
 * Who may see whose presence on a conversation's sockets (section 17): each member's
 * last_seen setting, contacts and blocks, read from D1 for the members at once and kept
 * in memory. A member's inbox says when any of that changed for them (settings, blocks,
 * a new contact), which drops the cache at once; it is also never kept longer than
 * AUDIENCE_TTL_MS, in case such a notice was lost, nor across a change of members.
 */
import { UNKNOWN_PRESENCE, type PresenceFrame } from "../protocol";
import { maySeePresence, presenceAudience, type PresenceAudience } from "./privacy";

export const AUDIENCE_TTL_MS = 60_000;

export class AudienceCache {
  private audience: PresenceAudience | null = null;
  private key = "";
  private loadedAt = 0;
  private loading: Promise<PresenceAudience> | null = null;

  constructor(private readonly db: D1Database) {}

  /** The audience for these members, from memory when it is fresh. */
  async get(members: string[]): Promise<PresenceAudience> {
    const key = members.join(" ");
    if (this.audience && this.key === key && Date.now() - this.loadedAt < AUDIENCE_TTL_MS) return this.audience;
    this.loading ??= presenceAudience(this.db, members)
      .then((audience) => {
        this.audience = audience;
        this.key = key;
        this.loadedAt = Date.now();
        return audience;
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  /** What was last loaded, if anything (to tell who lost sight of a user after a change). */
  peek(): PresenceAudience | null {
    return this.audience;
  }

  invalidate(): void {
    this.audience = null;
  }
}

export { maySeePresence };

/** A presence frame as `viewer` may see it: the real one, or null when it is hidden from them. */
export function presenceFor(audience: PresenceAudience, viewer: string, frame: { user_id: string }): typeof frame | null {
  return maySeePresence(audience, frame.user_id, viewer) ? frame : null;
}

export const unknownFrame = (userId: string): PresenceFrame => ({ type: "presence", user_id: userId, ...UNKNOWN_PRESENCE });
