/** Privacy settings and blocks: CONTRACT.md section 17. */
import { eq } from "drizzle-orm";
import { Hono } from "hono";
import { directory } from "../../objects/directory";
import { addBlock, blocksOf, privacyOf, removeBlock, savePrivacy } from "../../objects/privacy";
import { BlockBody, PrivacyBody } from "../../protocol";
import { BlockList, PrivacySettingsSchema } from "../../protocol/responses";
import { users } from "../../schema/schema";
import { ApiError } from "../errors";
import { readJson } from "../lib/body";
import { limits } from "../../shared/config";
import { directConversationId } from "../../shared/ids";
import { conversationStub, inboxStub } from "../../shared/stubs";
import { requireAuth } from "../middleware/auth";
import { describeRoute, errors, json, jsonBody, pathParameter } from "../openapi/describe";
import type { AppEnv } from "../types";

export const privacy = new Hono<AppEnv>();
privacy.use("/me/privacy", requireAuth());
privacy.use("/blocks", requireAuth());
privacy.use("/blocks/*", requireAuth());

/**
 * Tells the user's inbox that who may see their presence changed, so the conversations
 * watching it re-check at once. Best effort: those also re-read within a minute.
 */
async function presencePolicyChanged(env: Env, userId: string): Promise<void> {
  try {
    await inboxStub(env, userId).privacyChanged(userId);
  } catch (err) {
    console.warn("could not pass on a privacy change", err);
  }
}

const getDoc = describeRoute({
  operationId: "getPrivacy",
  tags: ["privacy"],
  summary: "The caller's privacy settings",
  responses: { 200: json("The settings", PrivacySettingsSchema), ...errors("unauthorized") },
});
privacy.get("/me/privacy", getDoc, async (c) => c.json(await privacyOf(c.env.DB, c.get("auth").userId)));

const putDoc = describeRoute({
  operationId: "putPrivacy",
  tags: ["privacy"],
  summary: "Change the caller's privacy settings",
  description:
    'last_seen: who sees the caller\'s presence ("everyone" sharing a conversation, "contacts", "nobody"; others get status "unknown" and no presence frames). ' +
    'add_to_groups: who may put the caller into groups ("everyone", "contacts"; others get 403). Fields left out are unchanged.',
  requestBody: jsonBody(PrivacyBody),
  responses: { 200: json("The settings now", PrivacySettingsSchema), ...errors("invalid_request", "unauthorized", "too_large") },
});
privacy.put("/me/privacy", putDoc, async (c) => {
  const body = await readJson(c, PrivacyBody);
  const { userId } = c.get("auth");
  const settings = await savePrivacy(c.env.DB, userId, body);
  if (body.last_seen !== undefined) await presencePolicyChanged(c.env, userId);
  return c.json(settings);
});

const listDoc = describeRoute({
  operationId: "listBlocks",
  tags: ["privacy"],
  summary: "The users the caller blocked",
  responses: { 200: json("The blocks", BlockList), ...errors("unauthorized") },
});
privacy.get("/blocks", listDoc, async (c) => c.json({ blocks: await blocksOf(c.env.DB, c.get("auth").userId) }));

/** Tells the pair's direct conversation, if there is one: it refuses the blocked user's sends and leaves the blocker's list. */
async function blockInDirect(env: Env, blocker: string, blocked: string, on: boolean): Promise<void> {
  const id = await directConversationId(blocker, blocked);
  const known = await env.DB.prepare("SELECT 1 FROM conversations WHERE id = ?").bind(id).first();
  if (known) await conversationStub(env, id).blockChanged(blocker, blocked, on);
}

const blockDoc = describeRoute({
  operationId: "block",
  tags: ["privacy"],
  summary: "Block a user",
  description:
    "Their messages in the direct conversation with the caller are refused (403) and it leaves the caller's list; " +
    "they cannot add the caller to groups nor see the caller's presence. Repeating it is harmless.",
  requestBody: jsonBody(BlockBody),
  responses: { 204: { description: "Blocked" }, ...errors("invalid_request", "unauthorized", "not_found", "too_large", "limit_exceeded") },
});
privacy.post("/blocks", blockDoc, async (c) => {
  const { user_id: target } = await readJson(c, BlockBody);
  const { userId } = c.get("auth");
  if (target === userId) throw new ApiError("invalid_request", "user_id: one cannot block oneself");
  const [known] = await directory(c.env.DB).select({ id: users.id }).from(users).where(eq(users.id, target));
  if (!known) throw new ApiError("not_found", "no such user");
  const max = limits(c.env).maxBlocksPerUser;
  if (!(await addBlock(c.env.DB, userId, target, max))) throw new ApiError("limit_exceeded", `at most ${max} blocked users`);
  await blockInDirect(c.env, userId, target, true);
  await presencePolicyChanged(c.env, userId);
  return c.body(null, 204);
});

const unblockDoc = describeRoute({
  operationId: "unblock",
  tags: ["privacy"],
  summary: "Unblock a user",
  description: "Undoes POST /v1/blocks; 204 also when the user was not blocked.",
  parameters: [pathParameter("user_id", "The blocked user")],
  responses: { 204: { description: "Not blocked (any more)" }, ...errors("unauthorized") },
});
privacy.delete("/blocks/:user_id", unblockDoc, async (c) => {
  const target = c.req.param("user_id");
  const { userId } = c.get("auth");
  await removeBlock(c.env.DB, userId, target);
  if (target !== userId) await blockInDirect(c.env, userId, target, false);
  await presencePolicyChanged(c.env, userId);
  return c.body(null, 204);
});
