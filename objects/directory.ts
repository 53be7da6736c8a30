/**
 * The D1 directory, as the objects and the Worker both use it: who exists, which
 * devices are live, who belongs to which conversation.
 */
import { and, eq, inArray, isNull, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { conversations, devices, memberships, users } from "../schema/schema";
import type { Role } from "../protocol";

export const directory = (db: D1Database) => drizzle(db, { schema: { users, devices, conversations, memberships } });
export type Directory = ReturnType<typeof directory>;

/** The ids among `ids` that belong to no user. D1 caps bound parameters, so ask in slices. */
export async function unknownUsers(dir: Directory, ids: string[]): Promise<string[]> {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += 90) {
    const rows = await dir.select({ id: users.id }).from(users).where(inArray(users.id, ids.slice(i, i + 90)));
    for (const r of rows) found.add(r.id);
  }
  return ids.filter((id) => !found.has(id));
}

export async function isLiveDevice(dir: Directory, userId: string, deviceId: string): Promise<boolean> {
  const rows = await dir
    .select({ id: devices.id })
    .from(devices)
    .where(and(eq(devices.id, deviceId), eq(devices.userId, userId), isNull(devices.revokedAt)));
  return rows.length > 0;
}

/** The live (not revoked) devices of these users. */
export async function liveDevicesOf(dir: Directory, userIds: string[]): Promise<{ userId: string; deviceId: string }[]> {
  const out: { userId: string; deviceId: string }[] = [];
  for (let i = 0; i < userIds.length; i += 90) {
    const rows = await dir
      .select({ userId: devices.userId, deviceId: devices.id })
      .from(devices)
      .where(and(inArray(devices.userId, userIds.slice(i, i + 90)), isNull(devices.revokedAt)));
    out.push(...rows);
  }
  return out;
}

export async function liveDeviceCount(dir: Directory, userId: string): Promise<number> {
  const [row] = await dir
    .select({ n: sql<number>`count(*)` })
    .from(devices)
    .where(and(eq(devices.userId, userId), isNull(devices.revokedAt)));
  return row?.n ?? 0;
}

export interface ConversationRecord {
  id: string;
  type: "direct" | "group";
  name: string | null;
  directKey: string | null;
  encryption?: "none" | "mls";
  createdBy: string;
  createdAt: number;
}

/** Writes a conversation and its first members; repeating it is harmless. */
export async function recordConversation(dir: Directory, c: ConversationRecord, members: { userId: string; role: Role }[]) {
  await dir.batch([
    dir.insert(conversations).values(c).onConflictDoNothing(),
    ...chunks(members, 20).map((slice) =>
      dir
        .insert(memberships)
        .values(slice.map((m) => ({ conversationId: c.id, userId: m.userId, role: m.role, joinedAt: c.createdAt })))
        .onConflictDoNothing(),
    ),
  ]);
}

export async function recordMembers(dir: Directory, conversationId: string, members: { userId: string; role: Role }[], now: number) {
  for (const slice of chunks(members, 20)) {
    await dir
      .insert(memberships)
      .values(slice.map((m) => ({ conversationId, userId: m.userId, role: m.role, joinedAt: now })))
      .onConflictDoUpdate({ target: [memberships.conversationId, memberships.userId], set: { role: sql`excluded.role` } });
  }
}

export async function forgetMember(dir: Directory, conversationId: string, userId: string) {
  await dir.delete(memberships).where(and(eq(memberships.conversationId, conversationId), eq(memberships.userId, userId)));
}

/** Whether two users are members of at least one conversation together. */
export async function shareConversation(db: D1Database, a: string, b: string): Promise<boolean> {
  const row = await db
    .prepare(
      `SELECT 1 FROM memberships x JOIN memberships y ON x.conversation_id = y.conversation_id
       WHERE x.user_id = ? AND y.user_id = ? LIMIT 1`,
    )
    .bind(a, b)
    .first();
  return row !== null;
}

export async function conversationIdsOf(dir: Directory, userId: string): Promise<string[]> {
  const rows = await dir.select({ id: memberships.conversationId }).from(memberships).where(eq(memberships.userId, userId));
  return rows.map((r) => r.id);
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * What D1 says of a user and a conversation, asked before any conversation object is
 * woken: an id that names nothing (or a non-member) never reaches one. D1 is written
 * before the object on every membership change, so a member here is at least as recent.
 */
export async function membershipOf(db: D1Database, conversationId: string, userId: string): Promise<"member" | "outsider" | "unknown"> {
  const row = await db
    .prepare(
      `SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?1) AS known,
              EXISTS (SELECT 1 FROM memberships WHERE conversation_id = ?1 AND user_id = ?2) AS member`,
    )
    .bind(conversationId, userId)
    .first<{ known: number; member: number }>();
  return row?.member ? "member" : row?.known ? "outsider" : "unknown";
}
