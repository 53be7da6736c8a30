/** Accounts, devices and user look-ups: CONTRACT.md section 3. */
import { and, eq, isNull } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { conversationIdsOf, directory, liveDeviceCount, shareConversation } from "../../objects/directory";
import { LoginBody, RegisterBody, UNKNOWN_PRESENCE } from "../../protocol";
import { DeviceSession, Me, PublicUser, VisiblePresenceSchema } from "../../protocol/responses";
import { maySeePresence, presenceAudience } from "../../objects/privacy";
import { devices, users } from "../../schema/schema";
import { ApiError } from "../errors";
import { parse, readJson } from "../lib/body";
import { limits } from "../../shared/config";
import { newId } from "../../shared/ids";
import { clientAddress, limit, refund } from "../lib/rate";
import { DUMMY_HASH, hashPassword, verifyPassword } from "../lib/password";
import { conversationStub, inboxStub } from "../../shared/stubs";
import { issueToken } from "../lib/token";
import { requireAuth } from "../middleware/auth";
import { describeRoute, errors, json, jsonBody, PUBLIC, pathParameter, queryParameters } from "../openapi/describe";
import type { AppEnv } from "../types";

export const accounts = new Hono<AppEnv>();

async function newDevice(env: Env, userId: string, name: string | null) {
  const deviceId = newId("d");
  await directory(env.DB).insert(devices).values({ id: deviceId, userId, name, createdAt: Date.now() });
  const ttl = limits(env).tokenTtlSeconds;
  return { user_id: userId, device_id: deviceId, token: await issueToken(env.TOKEN_SECRET, userId, deviceId, ttl) };
}

const registerDoc = describeRoute({
  operationId: "register",
  tags: ["accounts"],
  summary: "Create an account and its first device",
  security: PUBLIC,
  requestBody: jsonBody(RegisterBody),
  responses: { 201: json("The new user, device and token", DeviceSession), ...errors("invalid_request", "conflict", "too_large", "rate_limited") },
});
accounts.post("/auth/register", registerDoc, async (c) => {
  const body = await readJson(c, RegisterBody);
  const perMinute = limits(c.env).registrationsPerMinute;
  await limit(c.env, "registrations from this address", perMinute, [`register:addr:${clientAddress(c.req.raw)}`]);
  const dir = directory(c.env.DB);
  const userId = newId("u");
  const inserted = await dir
    .insert(users)
    .values({
      id: userId,
      handle: body.handle,
      displayName: body.display_name ?? null,
      passwordHash: await hashPassword(body.password),
      createdAt: Date.now(),
    })
    .onConflictDoNothing()
    .returning({ id: users.id });
  if (inserted.length === 0) throw new ApiError("conflict", "handle is taken");
  return c.json(await newDevice(c.env, userId, null), 201);
});

const loginDoc = describeRoute({
  operationId: "login",
  tags: ["accounts"],
  summary: "Log in: a new device and its token",
  description: "A wrong handle and a wrong password get the same 401.",
  security: PUBLIC,
  requestBody: jsonBody(LoginBody),
  responses: { 200: json("The user, the new device and its token", DeviceSession), ...errors("invalid_request", "unauthorized", "too_large", "limit_exceeded", "rate_limited") },
});
accounts.post("/auth/login", loginDoc, async (c) => {
  const body = await readJson(c, LoginBody);
  // Every attempt takes a token up front (so parallel guesses cannot all pass a check) and a
  // successful one gives it back: what the buckets count is failed logins.
  const perMinute = limits(c.env).loginFailuresPerMinute;
  const buckets = [`login:handle:${body.handle.slice(0, 64)}`, `login:addr:${clientAddress(c.req.raw)}`];
  await limit(c.env, "failed logins", perMinute, buckets);
  const [user] = await directory(c.env.DB).select().from(users).where(eq(users.handle, body.handle));
  const valid = await verifyPassword(body.password, user?.passwordHash ?? DUMMY_HASH);
  if (!user || !valid) throw new ApiError("unauthorized", "wrong handle or password");
  await refund(c.env, perMinute, buckets);
  const maxDevices = limits(c.env).maxDevicesPerUser;
  if ((await liveDeviceCount(directory(c.env.DB), user.id)) >= maxDevices) {
    throw new ApiError("limit_exceeded", `at most ${maxDevices} devices per user; delete one (DELETE /v1/devices/{device_id}) first`);
  }
  return c.json(await newDevice(c.env, user.id, body.device_name ?? null), 200);
});

accounts.use("/me", requireAuth());
const meDoc = describeRoute({
  operationId: "getMe",
  tags: ["accounts"],
  summary: "The caller, with their live devices",
  responses: { 200: json("The caller", Me), ...errors("unauthorized", "not_found") },
});
accounts.get("/me", meDoc, async (c) => {
  const { userId } = c.get("auth");
  const dir = directory(c.env.DB);
  const [user] = await dir.select().from(users).where(eq(users.id, userId));
  if (!user) throw new ApiError("not_found", "no such user");
  const live = await dir
    .select()
    .from(devices)
    .where(and(eq(devices.userId, userId), isNull(devices.revokedAt)))
    .orderBy(devices.createdAt);
  return c.json({
    user_id: user.id,
    handle: user.handle,
    display_name: user.displayName,
    devices: live.map((d) => ({ device_id: d.id, name: d.name, created_at: d.createdAt })),
  });
});

/** Revokes one of the caller's devices: D1 first (the next request fails), then every socket it holds. */
const deleteDeviceDoc = describeRoute({
  operationId: "deleteDevice",
  tags: ["accounts"],
  summary: "Revoke one of the caller's devices",
  description: "Its token stops working at once and its open sockets are closed with 4401.",
  parameters: [pathParameter("device_id", "One of the caller's devices")],
  responses: { 204: { description: "Revoked" }, ...errors("unauthorized", "not_found") },
});
accounts.delete("/devices/:device_id", deleteDeviceDoc, requireAuth(), async (c) => {
  const { userId } = c.get("auth");
  const deviceId = c.req.param("device_id");
  const dir = directory(c.env.DB);
  const revoked = await dir
    .update(devices)
    .set({ revokedAt: Date.now() })
    .where(and(eq(devices.id, deviceId), eq(devices.userId, userId), isNull(devices.revokedAt)))
    .returning({ id: devices.id });
  if (revoked.length === 0) throw new ApiError("not_found", "no such device");
  const conversations = await conversationIdsOf(dir, userId);
  await Promise.all([
    inboxStub(c.env, userId).revokeDevice(deviceId),
    ...conversations.map((id) => conversationStub(c.env, id).revokeDevice(deviceId)),
  ]);
  return c.body(null, 204);
});

const publicUser = (u: typeof users.$inferSelect) => ({ user_id: u.id, handle: u.handle, display_name: u.displayName });

const getUserDoc = describeRoute({
  operationId: "getUser",
  tags: ["accounts"],
  summary: "A user by id",
  parameters: [pathParameter("user_id", "The user")],
  responses: { 200: json("The user", PublicUser), ...errors("unauthorized", "not_found") },
});
accounts.get("/users/:user_id", getUserDoc, requireAuth(), async (c) => {
  const [user] = await directory(c.env.DB).select().from(users).where(eq(users.id, c.req.param("user_id")));
  if (!user) throw new ApiError("not_found", "no such user");
  return c.json(publicUser(user));
});

const UserQuery = z.object({ handle: z.string().min(1).max(4096) });
const findUserDoc = describeRoute({
  operationId: "findUser",
  tags: ["accounts"],
  summary: "A user by handle",
  parameters: queryParameters(UserQuery),
  responses: { 200: json("The user", PublicUser), ...errors("invalid_request", "unauthorized", "not_found", "rate_limited") },
});
accounts.get("/users", findUserDoc, requireAuth(), async (c) => {
  const { handle } = parse(UserQuery, c.req.query());
  const perMinute = limits(c.env).userLookupsPerMinute;
  await limit(c.env, "user look-ups", perMinute, [`lookup:user:${c.get("auth").userId}`]);
  const [user] = await directory(c.env.DB).select().from(users).where(eq(users.handle, handle));
  if (!user) throw new ApiError("not_found", "no such user");
  return c.json(publicUser(user));
});

/** Presence only for users the caller shares a conversation with (CONTRACT.md section 7). */
const presenceDoc = describeRoute({
  operationId: "getPresence",
  tags: ["live"],
  summary: "A user's presence",
  description:
    'Only for users who share a conversation with the caller. Status "unknown" (last_seen null) when the user\'s last_seen setting, or their block, hides it from the caller (section 17).',
  parameters: [pathParameter("user_id", "The user")],
  responses: { 200: json("Online, offline since last_seen, or unknown", VisiblePresenceSchema), ...errors("unauthorized", "forbidden", "not_found") },
});
accounts.get("/users/:user_id/presence", presenceDoc, requireAuth(), async (c) => {
  const target = c.req.param("user_id");
  const { userId } = c.get("auth");
  const [user] = await directory(c.env.DB).select({ id: users.id }).from(users).where(eq(users.id, target));
  if (!user) throw new ApiError("not_found", "no such user");
  if (target !== userId && !(await shareConversation(c.env.DB, userId, target))) {
    throw new ApiError("forbidden", "you share no conversation with this user");
  }
  if (!maySeePresence(await presenceAudience(c.env.DB, [target, userId]), target, userId)) return c.json(UNKNOWN_PRESENCE);
  return c.json(await inboxStub(c.env, target).getPresence());
});
