/**
 * The two WebSocket endpoints. The Worker authenticates and forwards the upgrade to the
 * object that owns the socket; it never accepts a socket itself.
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { CALLER_HEADERS } from "../../objects/schema";
import { ApiError } from "../errors";
import { limits } from "../lib/config";
import { isConversationId } from "../lib/ids";
import { conversationStub, inboxStub } from "../lib/stubs";
import { requireAuth } from "../middleware/auth";
import type { AppEnv, Auth } from "../types";

export const sockets = new Hono<AppEnv>();

/**
 * Browsers send `Origin` on WebSocket upgrades and do not apply CORS to them, so when an
 * allow-list is configured an upgrade from any other origin is refused (OWASP). Clients
 * that are not browsers send no Origin and are not affected.
 */
const checkOrigin = createMiddleware<AppEnv>(async (c, next) => {
  const allowed = limits(c.env as unknown as Record<string, unknown>).allowedOrigins;
  const origin = c.req.header("origin");
  if (allowed.length > 0 && origin !== undefined && !allowed.includes(origin)) {
    throw new ApiError("forbidden", `origin ${origin} may not open WebSockets here`);
  }
  await next();
});

/** The upgrade request as the object receives it: the caller's identity set by us, never by the client. */
function forwarded(request: Request, auth: Auth): Request {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError("invalid_request", "this endpoint takes WebSocket upgrades only");
  }
  const headers = new Headers(request.headers);
  headers.set(CALLER_HEADERS.user, auth.userId);
  headers.set(CALLER_HEADERS.device, auth.deviceId);
  headers.set(CALLER_HEADERS.exp, String(auth.exp));
  return new Request(request, { headers });
}

sockets.get("/sync", checkOrigin, requireAuth({ allowQueryToken: true }), async (c) => {
  const auth = c.get("auth");
  return inboxStub(c.env, auth.userId).fetch(forwarded(c.req.raw, auth));
});

sockets.get("/conversations/:id/ws", checkOrigin, requireAuth({ allowQueryToken: true }), async (c) => {
  const id = c.req.param("id");
  if (!isConversationId(id)) throw new ApiError("not_found", "no such conversation");
  const auth = c.get("auth");
  return conversationStub(c.env, id).fetch(forwarded(c.req.raw, auth));
});
