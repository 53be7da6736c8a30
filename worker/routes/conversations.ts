/** Conversations, members and messages: CONTRACT.md sections 4 and 5, relayed to the owning objects. */
import { Hono } from "hono";
import { AddMembersBody, CreateConversationBody, HistoryQuery, ListQuery, MarkerBody, SendBody } from "../../protocol";
import { ApiError, unwrap } from "../errors";
import { parse, readJson } from "../lib/body";
import { directConversationId, directKey, isConversationId, newId } from "../lib/ids";
import { conversationStub, inboxStub } from "../lib/stubs";
import { requireAuth } from "../middleware/auth";
import type { AppEnv } from "../types";

export const conversations = new Hono<AppEnv>();

// The socket route (mounted before this app) authenticates itself, with ?token= too.
conversations.use("/conversations", requireAuth());
conversations.use("/conversations/*", requireAuth());

/** The id from the path, if it can name a conversation at all; anything else is unknown. */
function conversationId(raw: string): string {
  if (!isConversationId(raw)) throw new ApiError("not_found", "no such conversation");
  return raw;
}

conversations.post("/conversations", async (c) => {
  const body = await readJson(c, CreateConversationBody);
  const { userId } = c.get("auth");
  if (body.type === "direct") {
    if (body.peer === userId) throw new ApiError("invalid_request", "peer: must be another user");
    const id = await directConversationId(userId, body.peer);
    const outcome = await conversationStub(c.env, id).create({
      conversationId: id,
      type: "direct",
      name: null,
      directKey: directKey(userId, body.peer),
      creator: userId,
      others: [body.peer],
    });
    const conversation = unwrap(outcome);
    return c.json(conversation, outcome.ok && outcome.created ? 201 : 200);
  }
  const id = newId("g");
  const outcome = await conversationStub(c.env, id).create({
    conversationId: id,
    type: "group",
    name: body.name,
    directKey: null,
    creator: userId,
    others: body.members,
  });
  return c.json(unwrap(outcome), 201);
});

conversations.get("/conversations", async (c) => {
  const q = parse(ListQuery, c.req.query());
  const { userId } = c.get("auth");
  return c.json(unwrap(await inboxStub(c.env, userId).listConversations(userId, { limit: q.limit ?? 50, cursor: q.cursor })));
});

conversations.get("/conversations/:id", async (c) => {
  const id = conversationId(c.req.param("id"));
  return c.json(unwrap(await conversationStub(c.env, id).describe(c.get("auth"))));
});

conversations.post("/conversations/:id/members", async (c) => {
  const id = conversationId(c.req.param("id"));
  const body = await readJson(c, AddMembersBody);
  return c.json(unwrap(await conversationStub(c.env, id).addMembers(c.get("auth"), body.user_ids)));
});

conversations.delete("/conversations/:id/members/:user_id", async (c) => {
  const id = conversationId(c.req.param("id"));
  unwrap(await conversationStub(c.env, id).removeMember(c.get("auth"), c.req.param("user_id")));
  return c.body(null, 204);
});

conversations.post("/conversations/:id/messages", async (c) => {
  const id = conversationId(c.req.param("id"));
  const body = await readJson(c, SendBody);
  const outcome = await conversationStub(c.env, id).postMessage(c.get("auth"), body);
  const message = unwrap(outcome);
  return c.json(message, outcome.ok && outcome.created ? 201 : 200);
});

conversations.get("/conversations/:id/messages", async (c) => {
  const id = conversationId(c.req.param("id"));
  const q = parse(HistoryQuery, c.req.query());
  const page = { after: q.after_seq, before: q.before_seq, limit: q.limit ?? 50 };
  return c.json(unwrap(await conversationStub(c.env, id).history(c.get("auth"), page)));
});

for (const kind of ["read", "delivered"] as const) {
  conversations.post(`/conversations/:id/${kind}`, async (c) => {
    const id = conversationId(c.req.param("id"));
    const body = await readJson(c, MarkerBody);
    unwrap(await conversationStub(c.env, id).mark(c.get("auth"), kind, body.up_to_seq));
    return c.body(null, 204);
  });
}
