/**
 * D1 schema: the directory of users, devices, conversations and memberships.
 * Messages never live here; each conversation's Durable Object owns its own.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    handle: text("handle").notNull(),
    displayName: text("display_name"),
    passwordHash: text("password_hash").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [uniqueIndex("users_handle").on(t.handle)],
);

export const devices = sqliteTable(
  "devices",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id),
    name: text("name"),
    createdAt: integer("created_at").notNull(),
    revokedAt: integer("revoked_at"),
  },
  (t) => [index("devices_user").on(t.userId)],
);

export const conversations = sqliteTable(
  "conversations",
  {
    id: text("id").primaryKey(),
    type: text("type", { enum: ["direct", "group"] }).notNull(),
    name: text("name"),
    /** For direct conversations: the two user ids, sorted and joined; enforces one per pair. */
    directKey: text("direct_key"),
    /** Section 10: "mls" conversations take only encrypted messages and MLS commits. */
    encryption: text("encryption", { enum: ["none", "mls"] }).notNull().default("none"),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [uniqueIndex("conversations_direct_key").on(t.directKey).where(sql`direct_key IS NOT NULL`)],
);

export const memberships = sqliteTable(
  "memberships",
  {
    conversationId: text("conversation_id")
      .notNull()
      .references(() => conversations.id),
    userId: text("user_id")
      .notNull()
      .references(() => users.id),
    role: text("role", { enum: ["admin", "member"] }).notNull(),
    joinedAt: integer("joined_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.conversationId, t.userId] }), index("memberships_user").on(t.userId)],
);

/**
 * Section 17. A user's privacy settings; no row means the defaults ("everyone" for both),
 * which is section 7 as it was.
 */
export const privacySettings = sqliteTable("privacy_settings", {
  userId: text("user_id")
    .primaryKey()
    .references(() => users.id),
  lastSeen: text("last_seen", { enum: ["everyone", "contacts", "nobody"] }).notNull().default("everyone"),
  addToGroups: text("add_to_groups", { enum: ["everyone", "contacts"] }).notNull().default("everyone"),
  updatedAt: integer("updated_at").notNull(),
});

/**
 * Section 17: `contactId` is a contact of `userId` once `userId` has sent a message in their
 * direct conversation. Written by that conversation's object on the sender's first message.
 */
export const contacts = sqliteTable(
  "contacts",
  {
    userId: text("user_id").notNull(),
    contactId: text("contact_id").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.contactId] })],
);

/** Section 17: `blockerId` refuses `blockedId`'s messages, group adds and presence look-ups. */
export const blocks = sqliteTable(
  "blocks",
  {
    blockerId: text("blocker_id").notNull(),
    blockedId: text("blocked_id").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.blockerId, t.blockedId] })],
);
