/**
 * Section 17 in D1: privacy settings, contacts and blocks, as the objects and the Worker
 * both ask them. Lists of users travel as one JSON parameter (json_each), because D1
 * caps bound parameters at 100 and a group has up to 256 members.
 */
export type LastSeen = "everyone" | "contacts" | "nobody";
export type AddToGroups = "everyone" | "contacts";
export interface PrivacySettings {
  last_seen: LastSeen;
  add_to_groups: AddToGroups;
}
export const DEFAULT_PRIVACY: PrivacySettings = { last_seen: "everyone", add_to_groups: "everyone" };

export async function privacyOf(db: D1Database, userId: string): Promise<PrivacySettings> {
  const row = await db
    .prepare("SELECT last_seen, add_to_groups FROM privacy_settings WHERE user_id = ?")
    .bind(userId)
    .first<PrivacySettings>();
  return row ?? { ...DEFAULT_PRIVACY };
}

export async function savePrivacy(db: D1Database, userId: string, change: Partial<PrivacySettings>): Promise<PrivacySettings> {
  const next = { ...(await privacyOf(db, userId)), ...change };
  await db
    .prepare(
      `INSERT INTO privacy_settings (user_id, last_seen, add_to_groups, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET last_seen = excluded.last_seen, add_to_groups = excluded.add_to_groups,
         updated_at = excluded.updated_at`,
    )
    .bind(userId, next.last_seen, next.add_to_groups, Date.now())
    .run();
  return next;
}

/** Records that `userId` sent in their direct conversation with `peerId`: `peerId` is now their contact. */
export async function recordContact(db: D1Database, userId: string, peerId: string): Promise<void> {
  await db
    .prepare("INSERT OR IGNORE INTO contacts (user_id, contact_id, created_at) VALUES (?, ?, ?)")
    .bind(userId, peerId, Date.now())
    .run();
}

/**
 * Among `targets`, those `adder` may not put into a group: they blocked the adder, or
 * take group adds from contacts only and the adder is not one of theirs.
 */
export async function refusedGroupAdds(db: D1Database, adder: string, targets: string[]): Promise<string[]> {
  if (targets.length === 0) return [];
  const { results } = await db
    .prepare(
      `SELECT t.value AS user_id FROM json_each(?1) t
       WHERE EXISTS (SELECT 1 FROM blocks WHERE blocker_id = t.value AND blocked_id = ?2)
          OR (EXISTS (SELECT 1 FROM privacy_settings WHERE user_id = t.value AND add_to_groups = 'contacts')
              AND NOT EXISTS (SELECT 1 FROM contacts WHERE user_id = t.value AND contact_id = ?2))`,
    )
    .bind(JSON.stringify(targets), adder)
    .all<{ user_id: string }>();
  return results.map((r) => r.user_id);
}

/**
 * Who among `users` may see whose presence, for one conversation's members: each user's
 * last_seen setting (when not "everyone"), their contacts among the others, and whom they blocked.
 */
export interface PresenceAudience {
  /** Subjects whose last_seen is not "everyone". */
  settings: Map<string, LastSeen>;
  /** "subject viewer" pairs: the viewer is a contact of the subject. */
  contacts: Set<string>;
  /** "subject viewer" pairs: the subject blocked the viewer. */
  blocked: Set<string>;
}

export async function presenceAudience(db: D1Database, users: string[]): Promise<PresenceAudience> {
  const ids = JSON.stringify(users);
  const [settings, contacts, blocked] = await db.batch<Record<string, string>>([
    db.prepare("SELECT user_id, last_seen FROM privacy_settings WHERE user_id IN (SELECT value FROM json_each(?1)) AND last_seen != 'everyone'").bind(ids),
    db
      .prepare("SELECT user_id AS a, contact_id AS b FROM contacts WHERE user_id IN (SELECT value FROM json_each(?1)) AND contact_id IN (SELECT value FROM json_each(?1))")
      .bind(ids),
    db
      .prepare("SELECT blocker_id AS a, blocked_id AS b FROM blocks WHERE blocker_id IN (SELECT value FROM json_each(?1)) AND blocked_id IN (SELECT value FROM json_each(?1))")
      .bind(ids),
  ]);
  return {
    settings: new Map(settings!.results.map((r) => [r.user_id!, r.last_seen as LastSeen])),
    contacts: new Set(contacts!.results.map((r) => `${r.a} ${r.b}`)),
    blocked: new Set(blocked!.results.map((r) => `${r.a} ${r.b}`)),
  };
}

/** Whether `viewer` may see `subject`'s presence (section 17); one always sees one's own. */
export function maySeePresence(audience: PresenceAudience, subject: string, viewer: string): boolean {
  if (subject === viewer) return true;
  if (audience.blocked.has(`${subject} ${viewer}`)) return false;
  const setting = audience.settings.get(subject) ?? "everyone";
  return setting === "everyone" || (setting === "contacts" && audience.contacts.has(`${subject} ${viewer}`));
}


// ---- blocks ------------------------------------------------------------------

export async function isBlocked(db: D1Database, blocker: string, blocked: string): Promise<boolean> {
  return (await db.prepare("SELECT 1 FROM blocks WHERE blocker_id = ? AND blocked_id = ?").bind(blocker, blocked).first()) !== null;
}

/** Adds a block; answers false when the blocker already holds `max` blocks (a repeat is fine). */
export async function addBlock(db: D1Database, blocker: string, blocked: string, max: number): Promise<boolean> {
  const { meta } = await db
    .prepare(
      `INSERT OR IGNORE INTO blocks (blocker_id, blocked_id, created_at)
       SELECT ?1, ?2, ?3 WHERE (SELECT count(*) FROM blocks WHERE blocker_id = ?1) < ?4
          OR EXISTS (SELECT 1 FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2)`,
    )
    .bind(blocker, blocked, Date.now(), max)
    .run();
  return meta.changes > 0 || (await isBlocked(db, blocker, blocked));
}

export async function removeBlock(db: D1Database, blocker: string, blocked: string): Promise<void> {
  await db.prepare("DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?").bind(blocker, blocked).run();
}

export async function blocksOf(db: D1Database, blocker: string): Promise<{ user_id: string; created_at: number }[]> {
  const { results } = await db
    .prepare("SELECT blocked_id AS user_id, created_at FROM blocks WHERE blocker_id = ? ORDER BY created_at, blocked_id")
    .bind(blocker)
    .all<{ user_id: string; created_at: number }>();
  return results;
}

/** The pair's blocks: which of the two blocked the other. */
export async function blocksBetween(db: D1Database, a: string, b: string): Promise<{ blocker: string; blocked: string }[]> {
  const { results } = await db
    .prepare("SELECT blocker_id AS blocker, blocked_id AS blocked FROM blocks WHERE (blocker_id = ?1 AND blocked_id = ?2) OR (blocker_id = ?2 AND blocked_id = ?1)")
    .bind(a, b)
    .all<{ blocker: string; blocked: string }>();
  return results;
}
