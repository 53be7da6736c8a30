/**
 * The MLS Delivery Service state of one conversation (CONTRACT.md section 10): the epochs
 * its accepted commits made, each with its group info and the devices of its tree, and
 * the users removed since whose leaves the next commit must remove.
 *
 * The Worker has decoded the commit and group info and checked their signatures
 * (mls/adapter.ts); `judge` decides from this state, synchronously, so that the decision
 * and the write that follows it see the same epoch.
 */
import type { CommitHeader, GroupInfoSummary } from "../mls/adapter";
import { deviceIdentity, readPrivateMessage } from "../mls/adapter";
import { fail, failWith, type ErrorBody } from "../protocol";

export const MLS_SCHEMA = [
  `CREATE TABLE mls_epochs (
     epoch INTEGER PRIMARY KEY, seq INTEGER NOT NULL, group_info TEXT NOT NULL, devices TEXT NOT NULL);
   CREATE TABLE mls_pending_removals (user_id TEXT PRIMARY KEY, removed_at INTEGER NOT NULL);`,
] as const;

/** What the Worker read of a commit request. */
export interface CommitFacts {
  commit: CommitHeader;
  groupInfo: GroupInfoSummary;
}

export interface Device {
  userId: string;
  deviceId: string;
}

export interface Verdict {
  /** Devices in the new tree that were not in the old one, the committer's own left out. */
  added: Device[];
  devices: Device[];
}

export class MlsStore {
  constructor(private readonly sql: SqlStorage) {}

  /** The group's epoch: that of the last accepted commit, 0 before the first. */
  currentEpoch(): number {
    return this.sql.exec<{ e: number | null }>("SELECT max(epoch) AS e FROM mls_epochs").one().e ?? 0;
  }

  /**
   * A PrivateMessage of this group is taken only in the group's current epoch: one made
   * before the last commit (a removal, say) is refused with 409 and the epoch, and the
   * sender encrypts it again after applying that commit, so nothing is ever sent under keys
   * a removed device still holds. Content that is not a PrivateMessage of this group stays
   * opaque (section 5: the server does not interpret content). Null when it may be stored.
   */
  checkApplicationMessage(conversationId: string, content: string): { ok: false; error: ErrorBody } | null {
    const header = readPrivateMessage(content);
    if (!header.ok || header.value.groupId !== conversationId) return null;
    const current = this.currentEpoch();
    if (header.value.epoch === current) return null;
    return failWith("conflict", `content: encrypted in epoch ${header.value.epoch}, the group is at epoch ${current}`, { epoch: current });
  }

  epochOfSeq(seq: number): number | null {
    return this.sql.exec<{ epoch: number }>("SELECT epoch FROM mls_epochs WHERE seq = ?", seq).toArray()[0]?.epoch ?? null;
  }

  groupInfo(epoch: number): { epoch: number; group_info: string } | null {
    return this.sql.exec<{ epoch: number; group_info: string }>("SELECT epoch, group_info FROM mls_epochs WHERE epoch = ?", epoch).toArray()[0] ?? null;
  }

  record(epoch: number, seq: number, groupInfo: string, devices: Device[]): void {
    this.sql.exec("INSERT INTO mls_epochs (epoch, seq, group_info, devices) VALUES (?, ?, ?, ?)", epoch, seq, groupInfo, JSON.stringify(devices));
    this.sql.exec("DELETE FROM mls_pending_removals");
  }

  /** A member left or was removed: the next commit must take all their leaves out. */
  removalPending(userId: string): void {
    this.sql.exec("INSERT OR REPLACE INTO mls_pending_removals (user_id, removed_at) VALUES (?, ?)", userId, Date.now());
  }

  /** Re-added before a commit removed them: their leaves may stay. */
  removalCancelled(userId: string): void {
    this.sql.exec("DELETE FROM mls_pending_removals WHERE user_id = ?", userId);
  }

  pendingRemovals(): string[] {
    return this.sql.exec<{ user_id: string }>("SELECT user_id FROM mls_pending_removals ORDER BY removed_at, user_id").toArray().map((r) => r.user_id);
  }

  private devicesAt(epoch: number): Device[] | null {
    const row = this.sql.exec<{ devices: string }>("SELECT devices FROM mls_epochs WHERE epoch = ?", epoch).toArray()[0];
    return row ? (JSON.parse(row.devices) as Device[]) : null;
  }

  /**
   * Whether the commit moving on from `epoch` may be accepted. `isMember` tells current
   * members; `liveDevices` holds, for the users of the devices the commit adds, their
   * devices not revoked (as `USER_ID/DEVICE_ID`).
   */
  judge(
    conversationId: string,
    caller: Device,
    epoch: number,
    facts: CommitFacts,
    isMember: (userId: string) => boolean,
    liveDevices: Set<string> | null,
  ): { ok: true; value: Verdict } | { ok: false; error: ErrorBody } {
    const current = this.currentEpoch();
    if (epoch !== current) return failWith("conflict", `the group is at epoch ${current}`, { epoch: current });
    const { commit, groupInfo } = facts;
    if (commit.groupId !== conversationId || groupInfo.groupId !== conversationId) {
      return fail("invalid_request", "the MLS group id must be the UTF-8 bytes of the conversation id");
    }
    if (commit.epoch !== epoch) return fail("invalid_request", `commit: made in epoch ${commit.epoch}, not ${epoch}`);
    if (groupInfo.epoch !== epoch + 1) return fail("invalid_request", `group_info: for epoch ${groupInfo.epoch}, not ${epoch + 1}`);

    const devices: Device[] = [];
    for (const leaf of groupInfo.leaves) {
      if (!leaf.identity) return fail("forbidden", `leaf ${leaf.index}: credential must be basic with identity USER_ID/DEVICE_ID`);
      devices.push(leaf.identity);
    }
    // One leaf per device: a second one (an external join racing the welcome that added the
    // device) would leave the device unable to tell which of its states is the group's.
    const seen = new Set<string>();
    for (const d of devices) {
      const id = deviceIdentity(d.userId, d.deviceId);
      if (seen.has(id)) return fail("invalid_request", `device ${id} would have two leaves`);
      seen.add(id);
    }
    const pending = this.pendingRemovals().filter((u) => devices.some((d) => d.userId === u));
    if (pending.length) {
      return failWith("conflict", "the commit must remove every leaf of the users removed from the conversation", { pending_removals: pending });
    }
    const stranger = devices.find((d) => !isMember(d.userId));
    if (stranger) return fail("forbidden", `leaf of ${stranger.userId}, who is not a member`);

    const own = deviceIdentity(caller.userId, caller.deviceId);
    const key = (d: Device) => deviceIdentity(d.userId, d.deviceId);
    if (!devices.some((d) => key(d) === own)) return fail("forbidden", "the calling device is not in the new tree");
    if (commit.senderLeaf !== null) {
      const committer = groupInfo.leaves.find((l) => l.index === commit.senderLeaf)?.identity;
      if (!committer || key(committer) !== own) return fail("forbidden", "the commit's sender is not the calling device");
    }
    // Before the first commit the tree is the creator's alone.
    const before = new Set((epoch === 0 ? [caller] : (this.devicesAt(epoch) ?? [])).map(key));
    const added = devices.filter((d) => !before.has(key(d)) && key(d) !== own);
    if (commit.external && added.length > 0) return fail("forbidden", "an external commit adds only the committer's own device");
    if (liveDevices) {
      const dead = added.find((d) => !liveDevices.has(key(d)));
      if (dead) return fail("forbidden", `leaf names ${key(dead)}, not a live device of that user`);
    }
    return { ok: true, value: { added, devices } };
  }

  /** The users whose live devices `judge` needs to know: those of devices the commit may add. */
  candidates(epoch: number, caller: Device, facts: CommitFacts): string[] {
    const key = (d: Device) => deviceIdentity(d.userId, d.deviceId);
    const before = new Set((epoch === 0 ? [caller] : (this.devicesAt(epoch) ?? [])).map(key));
    const users = new Set<string>();
    for (const leaf of facts.groupInfo.leaves) if (leaf.identity && !before.has(key(leaf.identity))) users.add(leaf.identity.userId);
    return [...users];
  }
}
