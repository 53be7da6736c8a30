/**
 * The two WebSocket endpoints. The Worker authenticates and forwards the upgrade to the
 * object that owns the socket; it never accepts a socket itself.
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { CursorParam } from "../../protocol";
import { CALLER_HEADERS } from "../../shared/caller";
import { ApiError } from "../errors";
import { limits } from "../../shared/config";
import { memberConversation } from "../lib/membership";
import { conversationStub, inboxStub } from "../../shared/stubs";
import { requireAuth } from "../middleware/auth";
import { describeRoute, errors, pathParameter, queryParameters } from "../openapi/describe";
import type { AppEnv, Auth } from "../types";

export const sockets = new Hono<AppEnv>();

/**
 * Browsers send `Origin` on WebSocket upgrades and do not apply CORS to them, so when an
 * allow-list is configured an upgrade from any other origin is refused (OWASP). Clients
 * that are not browsers send no Origin and are not affected.
 */
const checkOrigin = createMiddleware<AppEnv>(async (c, next) => {
  const allowed = limits(c.env).allowedOrigins;
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

const tokenQuery = {
  token: z.string().optional().describe("The device token, when no authorization header can be set"),
  ticket: z.string().optional().describe("Instead of ?token=: a ticket from POST /v1/sync/ticket, accepted once within 60 s"),
};

/** Both are GET upgrades: 101 and a socket, or an error before any socket opens. */
const upgradeDoc = (doc: { operationId: string; summary: string; description: string; query: z.ZodObject; path?: string }) =>
  describeRoute({
    operationId: doc.operationId,
    tags: ["live"],
    summary: doc.summary,
    description: `${doc.description} JSON text frames, each an object with \`type\` (CONTRACT.md section 6).`,
    security: [{ bearer: [] }, { token_query: [] }, { ticket_query: [] }],
    parameters: [
      ...(doc.path ? [pathParameter("id", doc.path)] : []),
      ...queryParameters(doc.query),
      { name: "Upgrade", in: "header", required: true, schema: { type: "string", enum: ["websocket"] } },
    ],
    responses: {
      101: { description: "Switching Protocols: the WebSocket is open" },
      ...errors("invalid_request", "unauthorized", "forbidden", ...(doc.path ? ["not_found" as const] : []), "limit_exceeded"),
    },
  });

const syncDoc = upgradeDoc({
  operationId: "deviceSocket",
  summary: "The device socket: every event addressed to the user",
  description:
    "Replays every event after ?since= (absent: nothing), then streams new ones; each carries a cursor. " +
    "403 for an Origin outside ALLOWED_ORIGINS; 422 past the open sockets per user.",
  query: z.object({ ...tokenQuery, since: CursorParam.optional().describe("The last cursor this device received") }),
});
sockets.get("/sync", syncDoc, checkOrigin, requireAuth({ allowQueryToken: true }), async (c) => {
  const auth = c.get("auth");
  return inboxStub(c.env, auth.userId).fetch(forwarded(c.req.raw, auth));
});

const conversationSocketDoc = upgradeDoc({
  operationId: "conversationSocket",
  summary: "The conversation socket: send, receipts, typing, presence",
  description: "Members only (403 before the upgrade otherwise); 403 too for an Origin outside ALLOWED_ORIGINS.",
  query: z.object(tokenQuery),
  path: "The conversation",
});
sockets.get("/conversations/:id/ws", conversationSocketDoc, checkOrigin, requireAuth({ allowQueryToken: true }), async (c) => {
  const auth = c.get("auth");
  const id = await memberConversation(c.env, c.req.param("id"), auth.userId);
  return conversationStub(c.env, id).fetch(forwarded(c.req.raw, auth));
});
