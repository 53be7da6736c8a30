/** Web Push subscriptions and the VAPID public key: CONTRACT.md section 8. */
import { Hono } from "hono";
import { PushSubscriptionBody } from "../../objects/push-subscriptions";
import { ApiError } from "../errors";
import { readJson } from "../lib/body";
import { pushConfig } from "../lib/config";
import { inboxStub } from "../lib/stubs";
import { requireAuth } from "../middleware/auth";
import { parseSubscription, WebPushError } from "../push";
import type { AppEnv } from "../types";

export const push = new Hono<AppEnv>();

push.get("/push/vapid-public-key", (c) => c.json({ key: c.env.VAPID_PUBLIC_KEY }));

push.post("/push/subscriptions", requireAuth(), async (c) => {
  const body = await readJson(c, PushSubscriptionBody);
  try {
    await parseSubscription(body, { allowLoopbackHttp: pushConfig(c.env).allowLoopbackHttp });
  } catch (err) {
    if (err instanceof WebPushError) throw new ApiError("invalid_request", err.message);
    throw err;
  }
  const { userId, deviceId } = c.get("auth");
  await inboxStub(c.env, userId).putPushSubscription(deviceId, body);
  return c.json({ device_id: deviceId, endpoint: body.endpoint }, 201);
});

push.delete("/push/subscriptions", requireAuth(), async (c) => {
  const { userId, deviceId } = c.get("auth");
  await inboxStub(c.env, userId).deletePushSubscription(deviceId);
  return c.body(null, 204);
});
