/**
 * MLS Delivery Service and key-package directory: CONTRACT.md section 10. Every MLS
 * structure is parsed and its signatures checked here (mls/adapter.ts); the objects keep
 * the state: key packages in each user's Inbox, epochs and group infos in the Conversation.
 */
import { Hono } from "hono";
import { checkKeyPackage, checkWelcome, readCommit, readGroupInfo } from "../../mls/adapter";
import { directory, liveDevicesOf, unknownUsers } from "../../objects/directory";
import type { VerifiedKeyPackage } from "../../objects/key-packages";
import { ClaimKeyPackagesBody, CommitBody, UploadKeyPackagesBody } from "../../protocol";
import { ClaimedKeyPackages, CommitAccepted, GroupInfoSchema, KeyPackageCount, KeyPackagesStored } from "../../protocol/responses";
import { z } from "zod";
import { ApiError, unwrap } from "../errors";
import { parse, readJson } from "../lib/body";
import { limits } from "../../shared/config";
import { memberConversation } from "../lib/membership";
import { conversationStub, inboxStub } from "../../shared/stubs";
import { authOnce } from "../middleware/auth";
import { describeRoute, errors, json, jsonBody, pathParameter, queryParameters } from "../openapi/describe";
import type { AppEnv } from "../types";

export const mls = new Hono<AppEnv>();

mls.use("/mls/*", authOnce);
mls.use("/conversations/:id/mls/*", authOnce);

const config = (env: Env) => limits(env);

// ---- key packages --------------------------------------------------------------

const uploadDoc = describeRoute({
  operationId: "uploadKeyPackages",
  tags: ["mls"],
  summary: "Upload key packages of the calling device",
  description:
    "Each is an MLSMessage-wrapped KeyPackage of cipher suite 1 with a valid signature, a basic credential whose identity is " +
    "USER_ID/DEVICE_ID of the caller and a current lifetime; one bad package → 400 and none stored. More than MAX_KEY_PACKAGES " +
    "unclaimed → 422 and none stored. A last_resort package replaces the device's previous one.",
  requestBody: jsonBody(UploadKeyPackagesBody),
  responses: { 201: json("Stored", KeyPackagesStored), ...errors("invalid_request", "unauthorized", "too_large", "limit_exceeded") },
});
mls.post("/mls/key-packages", uploadDoc, async (c) => {
  const body = await readJson(c, UploadKeyPackagesBody);
  const { userId, deviceId } = c.get("auth");
  const now = Date.now() / 1000;
  const verify = async (b64: string, where: string): Promise<VerifiedKeyPackage> => {
    const checked = await checkKeyPackage(b64, { userId, deviceId }, now);
    if (!checked.ok) throw new ApiError("invalid_request", `${where}: ${checked.reason}`);
    return { package: b64, notAfter: checked.value.notAfter };
  };
  const packages = await Promise.all(body.key_packages.map((b64, i) => verify(b64, `key_packages.${i}`)));
  const lastResort = body.last_resort === undefined ? null : await verify(body.last_resort, "last_resort");
  const stored = unwrap(await inboxStub(c.env, userId).storeKeyPackages(deviceId, packages, lastResort));
  return c.json(stored, 201);
});

const countDoc = describeRoute({
  operationId: "countKeyPackages",
  tags: ["mls"],
  summary: "How many unclaimed key packages the calling device has",
  responses: { 200: json("The count", KeyPackageCount), ...errors("unauthorized") },
});
mls.get("/mls/key-packages/count", countDoc, async (c) => {
  const { userId, deviceId } = c.get("auth");
  return c.json({ count: await inboxStub(c.env, userId).keyPackageCount(deviceId) });
});

const claimDoc = describeRoute({
  operationId: "claimKeyPackages",
  tags: ["mls"],
  summary: "Claim one key package for each live device of each user",
  description:
    "Each ordinary key package is handed out at most once, ever; a device with none left gives its last-resort package (kept), " +
    "a device with neither gives nothing. Claims count against the caller's rate limit. A device left with fewer than 10 gets " +
    '{"type":"key_packages_low"} on its device socket.',
  requestBody: jsonBody(ClaimKeyPackagesBody),
  responses: { 200: json("The packages", ClaimedKeyPackages), ...errors("invalid_request", "unauthorized", "not_found", "too_large", "rate_limited") },
});
mls.post("/mls/key-packages/claim", claimDoc, async (c) => {
  const body = await readJson(c, ClaimKeyPackagesBody);
  const { userId } = c.get("auth");
  const token = await inboxStub(c.env, userId).takeClaimToken();
  if (!token.ok) throw new ApiError("rate_limited", "too many key-package claims; slow down", token.retryAfterSeconds);
  const users = [...new Set(body.user_ids)];
  const dir = directory(c.env.DB);
  const unknown = await unknownUsers(dir, users);
  if (unknown.length) throw new ApiError("not_found", `unknown user: ${unknown[0]}`);
  const byUser = new Map<string, string[]>();
  for (const d of await liveDevicesOf(dir, users)) byUser.set(d.userId, [...(byUser.get(d.userId) ?? []), d.deviceId]);
  const out: { user_id: string; device_id: string; key_package: string }[] = [];
  const owners = [...byUser.entries()];
  for (let i = 0; i < owners.length; i += 16) {
    const answers = await Promise.all(
      owners.slice(i, i + 16).map(async ([owner, deviceIds]) => ({ owner, claimed: await inboxStub(c.env, owner).claimKeyPackages(deviceIds) })),
    );
    for (const { owner, claimed } of answers) {
      for (const k of claimed) out.push({ user_id: owner, device_id: k.deviceId, key_package: k.keyPackage });
    }
  }
  return c.json({ key_packages: out });
});

// ---- commits and group info ---------------------------------------------------------


const idParam = pathParameter("id", "The conversation");

const commitDoc = describeRoute({
  operationId: "postMlsCommit",
  tags: ["mls"],
  summary: "Submit an MLS commit (the Delivery Service orders them)",
  description:
    "Accepted when epoch is the group's current epoch (0 before the first commit), else 409 with the current epoch and nothing " +
    "stored. The commit must be a PublicMessage of the group whose id is the conversation id; every leaf of the new epoch's " +
    "ratchet tree (from group_info) must name a live device of a current member (else 403); an external commit adds only the " +
    "committer's own device; after a removal, the next commit must remove all of that user's leaves (else 409 with " +
    "pending_removals). Stored as a message of kind mls_commit; the welcome then reaches each added device on its device socket. " +
    "Idempotent by client_message_id. The body may be up to MAX_COMMIT_BODY_BYTES.",
  parameters: [idParam],
  requestBody: jsonBody(CommitBody),
  responses: {
    200: json("The original answer (a repeat)", CommitAccepted),
    201: json("Accepted", CommitAccepted),
    ...errors("invalid_request", "unauthorized", "forbidden", "not_found", "conflict", "too_large", "rate_limited"),
  },
});
mls.post("/conversations/:id/mls/commits", commitDoc, async (c) => {
  const id = await memberConversation(c.env, c.req.param("id"), c.get("auth").userId);
  const body = await readJson(c, CommitBody, config(c.env).maxCommitBodyBytes);
  const header = readCommit(body.commit);
  if (!header.ok) throw new ApiError("invalid_request", header.reason);
  const info = await readGroupInfo(body.group_info);
  if (!info.ok) throw new ApiError("invalid_request", info.reason);
  if (body.welcome !== undefined) {
    const welcome = checkWelcome(body.welcome);
    if (!welcome.ok) throw new ApiError("invalid_request", welcome.reason);
  }
  const outcome = await conversationStub(c.env, id).commitMls(c.get("auth"), body, { commit: header.value, groupInfo: info.value });
  const accepted = unwrap(outcome);
  return c.json(accepted, outcome.ok && outcome.created ? 201 : 200);
});

const GroupInfoQuery = z.object({
  epoch: z
    .string()
    .regex(/^\d{1,15}$/, "must be a non-negative integer")
    .transform(Number)
    .optional()
    .describe("an earlier epoch; default the current one"),
});

const groupInfoDoc = describeRoute({
  operationId: "getMlsGroupInfo",
  tags: ["mls"],
  summary: "The group info of the current epoch (or of ?epoch=), for members",
  parameters: [idParam, ...queryParameters(GroupInfoQuery)],
  responses: { 200: json("The group info", GroupInfoSchema), ...errors("invalid_request", "unauthorized", "forbidden", "not_found") },
});
mls.get("/conversations/:id/mls/group-info", groupInfoDoc, async (c) => {
  const id = await memberConversation(c.env, c.req.param("id"), c.get("auth").userId);
  const q = parse(GroupInfoQuery, c.req.query());
  return c.json(unwrap(await conversationStub(c.env, id).mlsGroupInfo(c.get("auth"), q.epoch ?? null)));
});
