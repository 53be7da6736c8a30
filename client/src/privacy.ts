/**
 * CONTRACT.md section 17 from the client side: the user's privacy settings (`chat.privacy`)
 * and the users they blocked (`chat.blocks`). Plain requests: the server applies each change
 * at once (presence, group adds, the blocked user's sends), so nothing is cached here.
 */
import type { Http } from "./http";
import type { BlockedUser, PrivacySettings } from "./types";

/** `chat.privacy`: who sees this user's presence, and who may add them to groups. */
export class PrivacyApi {
  constructor(private readonly http: Http) {}

  /** The settings now (both `everyone` until changed). */
  get(): Promise<PrivacySettings> {
    return this.http.request("GET", "/v1/me/privacy");
  }

  /** Changes the fields given, leaves the others; resolves with the settings now. */
  set(change: Partial<PrivacySettings>): Promise<PrivacySettings> {
    return this.http.request("PUT", "/v1/me/privacy", change);
  }
}

/**
 * `chat.blocks`: a blocked user's messages to this user are refused (403), they cannot add
 * this user to groups nor see their presence, and their direct conversation leaves this
 * user's list (it comes back on `remove`). The device stream says nothing of it: an app that
 * shows the list drops that conversation itself, or reloads the list.
 */
export class BlocksApi {
  constructor(private readonly http: Http) {}

  /** The blocked users, oldest block first. */
  async list(): Promise<BlockedUser[]> {
    return (await this.http.request<{ blocks: BlockedUser[] }>("GET", "/v1/blocks")).blocks;
  }

  /** Blocks a user (again is harmless); `not_found` for no such user, `invalid_request` for oneself. */
  add(userId: string): Promise<void> {
    return this.http.request("POST", "/v1/blocks", { user_id: userId });
  }

  /** Unblocks a user; fine when they were not blocked. */
  remove(userId: string): Promise<void> {
    return this.http.request("DELETE", `/v1/blocks/${encodeURIComponent(userId)}`);
  }
}
