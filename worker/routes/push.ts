/** Web Push subscriptions and the VAPID public key: CONTRACT.md section 8. */
import { Hono } from "hono";
import { PushSubscriptionBody } from "../../protocol";
import { PushSubscriptionCreated, VapidPublicKey } from "../../protocol/responses";
import { ApiError } from "../errors";
import { readJson } from "../lib/body";
import { pushConfig } from "../push/config";
import { inboxStub } from "../../shared/stubs";
import { requireAuth } from "../middleware/auth";
import { describeRoute, errors, json, jsonBody, PUBLIC } from "../openapi/describe";
import { parseSubscription, WebPushError } from "../push";
import type { AppEnv } from "../types";

export const push = new Hono<AppEnv>();

const vapidKeyDoc = describeRoute({
  operationId: "getVapidPublicKey",
  tags: ["push"],
  summary: "The VAPID public key, for PushManager.subscribe",
  security: PUBLIC,
  responses: { 200: json("The key", VapidPublicKey) },
});
push.get("/push/vapid-public-key", vapidKeyDoc, (c) => c.json({ key: c.env.VAPID_PUBLIC_KEY }));

const subscribeDoc = describeRoute({
  operationId: "putPushSubscription",
  tags: ["push"],
  summary: "Register (or replace) the calling device's Web Push subscription",
  description: "A browser's PushSubscription JSON. Endpoints must be https: URLs of a push service in PUSH_HOSTS (FCM, Mozilla, Apple, Windows by default), never an IP address or localhost; http: on loopback only on the local server.",
  requestBody: jsonBody(PushSubscriptionBody),
  responses: { 201: json("Registered", PushSubscriptionCreated), ...errors("invalid_request", "unauthorized", "too_large") },
});
push.post("/push/subscriptions", subscribeDoc, requireAuth(), async (c) => {
  const body = await readJson(c, PushSubscriptionBody);
  try {
    const { allowLoopbackHttp, hosts } = pushConfig(c.env);
    await parseSubscription(body, { allowLoopbackHttp, hosts });
  } catch (err) {
    if (err instanceof WebPushError) throw new ApiError("invalid_request", err.message);
    throw err;
  }
  const { userId, deviceId } = c.get("auth");
  await inboxStub(c.env, userId).putPushSubscription(deviceId, body);
  return c.json({ device_id: deviceId, endpoint: body.endpoint }, 201);
});

const unsubscribeDoc = describeRoute({
  operationId: "deletePushSubscription",
  tags: ["push"],
  summary: "Forget the calling device's subscription",
  responses: { 204: { description: "Forgotten" }, ...errors("unauthorized") },
});
push.delete("/push/subscriptions", unsubscribeDoc, requireAuth(), async (c) => {
  const { userId, deviceId } = c.get("auth");
  await inboxStub(c.env, userId).deletePushSubscription(deviceId);
  return c.body(null, 204);
});
