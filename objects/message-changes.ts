/**
 * Edits, deletes and reactions (CONTRACT.md section 13): who may change a message, and
 * what it becomes. Pure; the Conversation object stores the result and tells everyone.
 */
import { fail, MESSAGE_KINDS, ok, type Message, type Outcome, type Role } from "../protocol";

export type MessageChange = { kind: "edit"; content: string } | { kind: "delete" } | { kind: "react"; reaction: string | null };

export interface ChangeContext {
  userId: string;
  role: Role;
  conversationType: "direct" | "group";
  now: number;
  editWindowSeconds: number;
  maxContentChars: number;
}

/**
 * The message after the change, `created: false` when it changes nothing (a repeated
 * delete, the same reaction again), or the refusal.
 */
export function applyChange(message: Message, change: MessageChange, c: ChangeContext): Outcome<Message> {
  if (!(MESSAGE_KINDS as readonly string[]).includes(message.kind)) {
    return fail("forbidden", `a ${message.kind} event cannot be edited, deleted or reacted to`);
  }
  switch (change.kind) {
    case "edit": {
      if (message.sender_id !== c.userId) return fail("forbidden", "only the sender can edit a message");
      if (message.deleted) return fail("conflict", "the message was deleted");
      if (message.kind !== "text" && message.kind !== "encrypted") return fail("forbidden", "only text and encrypted messages can be edited");
      if (c.now - message.created_at > c.editWindowSeconds * 1000) {
        return fail("forbidden", `messages can be edited within ${c.editWindowSeconds} s of sending`);
      }
      if (change.content.length > c.maxContentChars) return fail("too_large", `content is longer than ${c.maxContentChars} characters`);
      return ok({ ...message, content: change.content, edited_at: c.now }, true);
    }
    case "delete": {
      const admin = c.conversationType === "group" && c.role === "admin";
      if (message.sender_id !== c.userId && !admin) return fail("forbidden", "only the sender or a group admin can delete a message");
      if (message.deleted) return ok(message, false);
      return ok(deletedVersion(message), true);
    }
    case "react": {
      if (message.deleted) return fail("conflict", "the message was deleted");
      const reactions = withReaction(message.reactions ?? {}, c.userId, change.reaction);
      if (JSON.stringify(reactions) === JSON.stringify(message.reactions ?? {})) return ok(message, false);
      const { reactions: _, ...rest } = message;
      return ok(Object.keys(reactions).length ? { ...rest, reactions } : rest, true);
    }
  }
}

/** What remains of a deleted message: its place in the order and who sent it, nothing it said. */
function deletedVersion(m: Message): Message {
  return {
    message_id: m.message_id,
    conversation_id: m.conversation_id,
    seq: m.seq,
    sender_id: m.sender_id,
    sender_device_id: m.sender_device_id,
    client_message_id: m.client_message_id,
    kind: m.kind,
    content: "",
    created_at: m.created_at,
    deleted: true,
  };
}

/** One reaction per user: theirs replaced (or removed with null); empty lists dropped; keys in first-given order. */
function withReaction(current: Record<string, string[]>, userId: string, reaction: string | null): Record<string, string[]> {
  const next: Record<string, string[]> = {};
  for (const [key, users] of Object.entries(current)) {
    const others = users.filter((u) => u !== userId);
    if (key === reaction && users.includes(userId)) next[key] = users;
    else if (others.length) next[key] = others;
  }
  if (reaction !== null && !next[reaction]?.includes(userId)) next[reaction] = [...(next[reaction] ?? []), userId];
  return next;
}
