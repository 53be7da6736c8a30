/**
 * The two WebSocket endpoints. The Worker authenticates and forwards the upgrade to the
 * object that owns the socket; it never accepts a socket itself.
 */
import { Hono } from "hono";
import { CALLER_HEADERS } from "../../objects/schema";
import { ApiError } from "../errors";
import { isConversationId } from "../lib/ids";
import { conversationStub, inboxStub } from "../lib/stubs";
import { requireAuth } from "../middleware/auth";
import type { AppEnv, Auth } from "../types";

export const sockets = new Hono<AppEnv>();

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

sockets.get("/sync", requireAuth({ allowQueryToken: true }), async (c) => {
  const auth = c.get("auth");
  return inboxStub(c.env, auth.userId).fetch(forwarded(c.req.raw, auth));
});

sockets.get("/conversations/:id/ws", requireAuth({ allowQueryToken: true }), async (c) => {
  const id = c.req.param("id");
  if (!isConversationId(id)) throw new ApiError("not_found", "no such conversation");
  const auth = c.get("auth");
  return conversationStub(c.env, id).fetch(forwarded(c.req.raw, auth));
});
