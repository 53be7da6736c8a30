/** Edits, deletes and reactions: CONTRACT.md section 13, relayed to the conversation's object. */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { EditBody, ReactionBody } from "../../protocol";
import { MessageSchema } from "../../protocol/responses";
import type { MessageChange } from "../../objects/message-changes";
import { unwrap } from "../errors";
import { parse, readJson } from "../lib/body";
import { memberConversation } from "../lib/membership";
import { conversationStub } from "../../shared/stubs";
import { authOnce } from "../middleware/auth";
import { describeRoute, errors, json, jsonBody, pathParameter } from "../openapi/describe";
import type { AppEnv } from "../types";

export const messageChanges = new Hono<AppEnv>();

messageChanges.use("/conversations/:id/messages/:seq", authOnce);
messageChanges.use("/conversations/:id/messages/:seq/reaction", authOnce);

const SeqParam = z.string().regex(/^\d{1,15}$/, "seq: must be a non-negative integer").transform(Number);
const params = [pathParameter("id", "The conversation"), pathParameter("seq", "The message's seq")];

/** Sends the change to the object once D1 says the caller is a member (as every conversation route). */
async function change(c: Context<AppEnv>, what: MessageChange) {
  const id = await memberConversation(c.env, c.req.param("id") ?? "", c.get("auth").userId);
  const seq = parse(SeqParam, c.req.param("seq"));
  return unwrap(await conversationStub(c.env, id).changeMessage(c.get("auth"), seq, what));
}

const editDoc = describeRoute({
  operationId: "editMessage",
  tags: ["messages"],
  summary: "Edit a message (the sender, within EDIT_WINDOW_SECONDS)",
  description: "Text and encrypted messages only; the answer carries edited_at. Everyone gets message_updated.",
  parameters: params,
  requestBody: jsonBody(EditBody),
  responses: {
    200: json("The message as it now is", MessageSchema),
    ...errors("invalid_request", "unauthorized", "forbidden", "not_found", "conflict", "too_large"),
  },
});
messageChanges.patch("/conversations/:id/messages/:seq", editDoc, async (c) => {
  const body = await readJson(c, EditBody);
  return c.json(await change(c, { kind: "edit", content: body.content }));
});

const deleteDoc = describeRoute({
  operationId: "deleteMessage",
  tags: ["messages"],
  summary: "Delete a message (the sender, or a group admin)",
  description:
    'The content and media are erased from storage, R2 history segments included; the message stays as {"deleted":true,"content":""} so seq stays gapless. Repeating it is a no-op.',
  parameters: params,
  responses: { 204: { description: "Deleted" }, ...errors("invalid_request", "unauthorized", "forbidden", "not_found") },
});
messageChanges.delete("/conversations/:id/messages/:seq", deleteDoc, async (c) => {
  await change(c, { kind: "delete" });
  return c.body(null, 204);
});

const reactDoc = describeRoute({
  operationId: "react",
  tags: ["messages"],
  summary: "Set the caller's reaction to a message (one per user, replacing theirs)",
  parameters: params,
  requestBody: jsonBody(ReactionBody),
  responses: { 204: { description: "Set" }, ...errors("invalid_request", "unauthorized", "forbidden", "not_found", "conflict", "too_large") },
});
messageChanges.put("/conversations/:id/messages/:seq/reaction", reactDoc, async (c) => {
  const body = await readJson(c, ReactionBody);
  await change(c, { kind: "react", reaction: body.reaction });
  return c.body(null, 204);
});

const unreactDoc = describeRoute({
  operationId: "unreact",
  tags: ["messages"],
  summary: "Remove the caller's reaction to a message",
  parameters: params,
  responses: { 204: { description: "Removed (or there was none)" }, ...errors("invalid_request", "unauthorized", "forbidden", "not_found", "conflict") },
});
messageChanges.delete("/conversations/:id/messages/:seq/reaction", unreactDoc, async (c) => {
  await change(c, { kind: "react", reaction: null });
  return c.body(null, 204);
});
