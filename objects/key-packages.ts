/**
 * The MLS key-package directory of one user's devices (CONTRACT.md section 10), in the
 * user's Inbox object. The Worker has parsed and verified every package before it gets
 * here; this store counts, keeps and hands them out.
 *
 * A claimed package is marked, not deleted, so the same bytes uploaded again are a repeat
 * and never handed out a second time. A claim is one UPDATE … RETURNING per device: a
 * package leaves the unclaimed set in the same statement that hands it out.
 */
import { fail, ok, type Outcome } from "../protocol";

export const KEY_PACKAGES_SCHEMA = `
  CREATE TABLE key_packages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, package TEXT NOT NULL,
    last_resort INTEGER NOT NULL DEFAULT 0, not_after INTEGER NOT NULL,
    claimed INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
  CREATE UNIQUE INDEX key_packages_bytes ON key_packages (package);
  CREATE INDEX key_packages_unclaimed ON key_packages (device_id, claimed, last_resort, id);`;

/** Below this many unclaimed packages a device is told to upload more. */
export const KEY_PACKAGES_LOW = 10;

export interface VerifiedKeyPackage {
  /** base64url MLSMessage, as uploaded. */
  package: string;
  /** Seconds since the epoch. */
  notAfter: number;
}

export interface ClaimedPackage {
  deviceId: string;
  keyPackage: string;
  /** Unclaimed packages the device has left. */
  remaining: number;
  lastResort: boolean;
}

export class KeyPackageStore {
  constructor(
    private readonly sql: SqlStorage,
    private readonly maxUnclaimed: number,
  ) {}

  /** Unclaimed, unexpired ordinary packages of a device. */
  count(deviceId: string, nowSeconds = Date.now() / 1000): number {
    return this.sql
      .exec<{ n: number }>(
        "SELECT count(*) AS n FROM key_packages WHERE device_id = ? AND claimed = 0 AND last_resort = 0 AND not_after > ?",
        deviceId,
        Math.floor(nowSeconds),
      )
      .one().n;
  }

  /**
   * Stores all of them or none (the caller runs this in one transaction): over the limit
   * of unclaimed packages → limit_exceeded. Repeats of stored packages are skipped. A new
   * last-resort package replaces the device's previous one.
   */
  store(deviceId: string, packages: VerifiedKeyPackage[], lastResort: VerifiedKeyPackage | null): Outcome<{ stored: number }> {
    const now = Date.now();
    // Expired packages would only be skipped by claims: drop them, they hold no place.
    this.sql.exec("DELETE FROM key_packages WHERE device_id = ? AND claimed = 0 AND not_after <= ?", deviceId, Math.floor(now / 1000));
    const fresh = [...new Map(packages.map((p) => [p.package, p])).values()].filter((p) => !this.known(p.package));
    if (this.count(deviceId) + fresh.length > this.maxUnclaimed) {
      return fail("limit_exceeded", `a device holds at most ${this.maxUnclaimed} unclaimed key packages`);
    }
    for (const p of fresh) {
      this.sql.exec(
        "INSERT INTO key_packages (device_id, package, not_after, created_at) VALUES (?, ?, ?, ?)",
        deviceId,
        p.package,
        p.notAfter,
        now,
      );
    }
    let stored = fresh.length;
    if (lastResort && !this.known(lastResort.package)) {
      this.sql.exec("DELETE FROM key_packages WHERE device_id = ? AND last_resort = 1", deviceId);
      this.sql.exec(
        "INSERT INTO key_packages (device_id, package, last_resort, not_after, created_at) VALUES (?, ?, 1, ?, ?)",
        deviceId,
        lastResort.package,
        lastResort.notAfter,
        now,
      );
      stored += 1;
    }
    return ok({ stored }, true);
  }

  /** One package of each device: its oldest unclaimed one, or else its last resort (kept); none if it has neither. */
  claim(deviceIds: string[]): ClaimedPackage[] {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const out: ClaimedPackage[] = [];
    for (const deviceId of deviceIds) {
      const taken = this.sql
        .exec<{ package: string }>(
          `UPDATE key_packages SET claimed = 1
           WHERE id = (SELECT id FROM key_packages
                       WHERE device_id = ? AND claimed = 0 AND last_resort = 0 AND not_after > ?
                       ORDER BY id LIMIT 1)
             AND claimed = 0
           RETURNING package`,
          deviceId,
          nowSeconds,
        )
        .toArray()[0];
      if (taken) {
        out.push({ deviceId, keyPackage: taken.package, remaining: this.count(deviceId), lastResort: false });
        continue;
      }
      const fallback = this.sql
        .exec<{ package: string }>(
          "SELECT package FROM key_packages WHERE device_id = ? AND last_resort = 1 AND not_after > ?",
          deviceId,
          nowSeconds,
        )
        .toArray()[0];
      if (fallback) out.push({ deviceId, keyPackage: fallback.package, remaining: 0, lastResort: true });
    }
    return out;
  }

  /** Forgets a revoked device's packages. */
  forget(deviceId: string): void {
    this.sql.exec("DELETE FROM key_packages WHERE device_id = ?", deviceId);
  }

  private known(pkg: string): boolean {
    return this.sql.exec("SELECT 1 FROM key_packages WHERE package = ?", pkg).toArray().length > 0;
  }
}
