/** Conversations, members and messages: CONTRACT.md sections 4 and 5, relayed to the owning objects. */
import { type Context, Hono } from "hono";
import { AddMembersBody, CreateConversationBody, HistoryQuery, ListQuery, MarkerBody, SendBody } from "../../protocol";
import { ConversationPage, ConversationSchema, HistoryPage, MessageSchema } from "../../protocol/responses";
import { ApiError, unwrap } from "../errors";
import { parse, readJson } from "../lib/body";
import { limits } from "../../shared/config";
import { directConversationId, directKey, newId } from "../../shared/ids";
import { limit } from "../lib/rate";
import { memberConversation } from "../lib/membership";
import { conversationStub, inboxStub } from "../../shared/stubs";
import { requireAuth } from "../middleware/auth";
import { describeRoute, errors, json, jsonBody, pathParameter, queryParameters } from "../openapi/describe";
import type { AppEnv } from "../types";

export const conversations = new Hono<AppEnv>();

// The socket route (mounted before this app) authenticates itself, with ?token= too.
conversations.use("/conversations", requireAuth());
conversations.use("/conversations/*", requireAuth());

/**
 * The id from the path, once D1 says the caller is a member: an unknown id is a 404 and a
 * non-member a 403 before any object is woken (an object for any well-formed id would
 * otherwise be created on the way).
 */
async function conversationId(c: Context<AppEnv>): Promise<string> {
  return memberConversation(c.env, c.req.param("id") ?? "", c.get("auth").userId);
}

const idParam = pathParameter("id", "The conversation");

const createDoc = describeRoute({
  operationId: "createConversation",
  tags: ["conversations"],
  summary: "Create a direct or a group conversation",
  description:
    "A pair of users has exactly one direct conversation: 201 when this call created it, 200 with the existing one. " +
    "A group's creator is its admin; the member limit is checked before the members' existence. " +
    "403 when a member's add_to_groups setting or a block refuses the creator (section 17).",
  requestBody: jsonBody(CreateConversationBody),
  responses: {
    200: json("The existing direct conversation", ConversationSchema),
    201: json("The new conversation", ConversationSchema),
    ...errors("invalid_request", "unauthorized", "forbidden", "not_found", "too_large", "limit_exceeded", "rate_limited"),
  },
});
conversations.post("/conversations", createDoc, async (c) => {
  const body = await readJson(c, CreateConversationBody);
  const { userId } = c.get("auth");
  const config = limits(c.env);
  await limit(c.env, "conversations created", config.conversationsPerMinute, [`conversations:user:${userId}`]);
  const others = body.type === "direct" ? [body.peer] : [...new Set(body.members)].filter((id) => id !== userId);
  if (others.length > 0) await limit(c.env, "members added", config.membersAddedPerMinute, [`members:user:${userId}`], others.length);
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
      encryption: body.encryption ?? "none",
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
    encryption: body.encryption ?? "none",
    history: body.history ?? "since_join",
  });
  return c.json(unwrap(outcome), 201);
});

const listDoc = describeRoute({
  operationId: "listConversations",
  tags: ["conversations"],
  summary: "The caller's conversations, most recent activity first",
  parameters: queryParameters(ListQuery),
  responses: { 200: json("One page", ConversationPage), ...errors("invalid_request", "unauthorized") },
});
conversations.get("/conversations", listDoc, async (c) => {
  const q = parse(ListQuery, c.req.query());
  const { userId } = c.get("auth");
  return c.json(unwrap(await inboxStub(c.env, userId).listConversations(userId, { limit: q.limit ?? 50, cursor: q.cursor })));
});

const getDoc = describeRoute({
  operationId: "getConversation",
  tags: ["conversations"],
  summary: "A conversation and its members",
  parameters: [idParam],
  responses: { 200: json("The conversation", ConversationSchema), ...errors("unauthorized", "forbidden", "not_found") },
});
conversations.get("/conversations/:id", getDoc, async (c) => {
  const id = await conversationId(c);
  return c.json(unwrap(await conversationStub(c.env, id).describe(c.get("auth"))));
});

const addMembersDoc = describeRoute({
  operationId: "addMembers",
  tags: ["conversations"],
  summary: "Add members to a group (admins)",
  description: "403 when a new member's add_to_groups setting or a block refuses the caller (section 17).",
  parameters: [idParam],
  requestBody: jsonBody(AddMembersBody),
  responses: {
    200: json("The conversation with its new members", ConversationSchema),
    ...errors("invalid_request", "unauthorized", "forbidden", "not_found", "too_large", "limit_exceeded", "rate_limited"),
  },
});
conversations.post("/conversations/:id/members", addMembersDoc, async (c) => {
  const id = await conversationId(c);
  const body = await readJson(c, AddMembersBody);
  const perMinute = limits(c.env).membersAddedPerMinute;
  await limit(c.env, "members added", perMinute, [`members:user:${c.get("auth").userId}`], new Set(body.user_ids).size);
  return c.json(unwrap(await conversationStub(c.env, id).addMembers(c.get("auth"), body.user_ids)));
});

const removeMemberDoc = describeRoute({
  operationId: "removeMember",
  tags: ["conversations"],
  summary: "Remove a member (admins), or leave (oneself)",
  description: "The removed member's open sockets on the conversation are closed with 4403.",
  parameters: [idParam, pathParameter("user_id", "The member to remove")],
  responses: { 204: { description: "Removed" }, ...errors("unauthorized", "forbidden", "not_found") },
});
conversations.delete("/conversations/:id/members/:user_id", removeMemberDoc, async (c) => {
  const id = await conversationId(c);
  unwrap(await conversationStub(c.env, id).removeMember(c.get("auth"), c.req.param("user_id")));
  return c.body(null, 204);
});

const sendDoc = describeRoute({
  operationId: "sendMessage",
  tags: ["messages"],
  summary: "Send a message",
  description:
    "Idempotent per (sender, client_message_id): a repeat answers 200 with the original. " +
    "A 201 is given only once the message is durably stored.",
  parameters: [idParam],
  requestBody: jsonBody(SendBody),
  responses: {
    200: json("The original message (a repeat)", MessageSchema),
    201: json("The stored message", MessageSchema),
    ...errors("invalid_request", "unauthorized", "forbidden", "not_found", "too_large", "rate_limited"),
  },
});
conversations.post("/conversations/:id/messages", sendDoc, async (c) => {
  const id = await conversationId(c);
  const body = await readJson(c, SendBody);
  const outcome = await conversationStub(c.env, id).postMessage(c.get("auth"), body);
  const message = unwrap(outcome);
  return c.json(message, outcome.ok && outcome.created ? 201 : 200);
});

const historyDoc = describeRoute({
  operationId: "history",
  tags: ["messages"],
  summary: "A page of history, ascending seq",
  description:
    "after_seq: the messages after it; before_seq: the ones just below it; neither: the newest page. " +
    'Only messages from when the caller (last) joined, unless the group\'s history is "shared" (section 17).',
  parameters: [idParam, ...queryParameters(HistoryQuery)],
  responses: { 200: json("One page", HistoryPage), ...errors("invalid_request", "unauthorized", "forbidden", "not_found") },
});
conversations.get("/conversations/:id/messages", historyDoc, async (c) => {
  const id = await conversationId(c);
  const q = parse(HistoryQuery, c.req.query());
  const page = { after: q.after_seq, before: q.before_seq, limit: q.limit ?? 50 };
  return c.json(unwrap(await conversationStub(c.env, id).history(c.get("auth"), page)));
});

for (const kind of ["read", "delivered"] as const) {
  const markerDoc = describeRoute({
    operationId: kind === "read" ? "markRead" : "markDelivered",
    tags: ["messages"],
    summary: kind === "read" ? "Move the caller's read marker" : "Move this device's delivered marker",
    description: "Markers only move forward: a lower up_to_seq is accepted and ignored; one above the last seq is a 400.",
    parameters: [idParam],
    requestBody: jsonBody(MarkerBody),
    responses: { 204: { description: "Recorded" }, ...errors("invalid_request", "unauthorized", "forbidden", "not_found", "too_large") },
  });
  conversations.post(`/conversations/:id/${kind}`, markerDoc, async (c) => {
    const id = await conversationId(c);
    const body = await readJson(c, MarkerBody);
    unwrap(await conversationStub(c.env, id).mark(c.get("auth"), kind, body.up_to_seq));
    return c.body(null, 204);
  });
}
