/** The HTTP surface: every route under /v1, every error in the contract's shape. */
import { Hono } from "hono";
import { Health } from "../protocol/responses";
import { ApiError, toErrorResponse } from "./errors";
import { describeRoute, json, PUBLIC } from "./openapi/describe";
import { limits, readVar, type Vars } from "../shared/config";
import { tokenSecretProblem } from "./lib/token";
import { openApiDocument } from "./openapi/document";
import { accounts } from "./routes/accounts";
import { calls } from "./routes/calls";
import { conversations } from "./routes/conversations";
import { messageChanges } from "./routes/message-changes";
import { media } from "./routes/media";
import { mls } from "./routes/mls";
import { privacy } from "./routes/privacy";
import { push } from "./routes/push";
import { sockets } from "./routes/sockets";
import { tickets } from "./routes/tickets";
import { syncCursor } from "./routes/sync-cursor";
import type { AppEnv } from "./types";

export const app = new Hono<AppEnv>().basePath("/v1");

/**
 * An empty ALLOWED_ORIGINS lets every origin open WebSockets (cross-site WebSocket
 * hijacking). That is meant for local runs (`npm start` sets PUSH_ALLOW_LOOPBACK_HTTP);
 * anywhere else it is a deployment mistake, said loudly.
 */
export function originsWarning(env: Vars): string | null {
  if (limits(env).allowedOrigins.length > 0 || readVar(env, "PUSH_ALLOW_LOOPBACK_HTTP") === "true") return null;
  return (
    "WARNING: ALLOWED_ORIGINS is empty, so pages of any origin may open WebSockets here " +
    "(no protection against cross-site WebSocket hijacking). Set ALLOWED_ORIGINS in wrangler.toml [vars] to your app's origins before deploying."
  );
}

/** API answers are per caller and never to be kept by a browser or a proxy. */
app.use("*", async (c, next) => {
  await next();
  if (c.res.status !== 101 && !c.res.headers.has("cache-control")) {
    try {
      c.res.headers.set("cache-control", "no-store");
    } catch {
      // immutable headers (a response passed through as is): leave them
      c.res = new Response(c.res.body, c.res);
      c.res.headers.set("cache-control", "no-store");
    }
  }
});

/** Logged once per isolate when deployed without ALLOWED_ORIGINS (any origin may open WebSockets). */
let originsChecked = false;
app.use("*", async (c, next) => {
  if (!originsChecked) {
    originsChecked = true;
    const warning = originsWarning(c.env);
    if (warning) console.warn(warning);
  }
  await next();
});

/**
 * Tokens signed with a short or publicly known secret can be forged by anyone: refuse to
 * work at all (health and this document aside) rather than issue or accept them.
 */
app.use("*", async (c, next) => {
  const problem = tokenSecretProblem(c.env.TOKEN_SECRET);
  if (problem && c.req.path !== "/v1/health" && c.req.path !== "/v1/openapi.json") {
    console.error(`refusing requests: ${problem}`);
    throw new ApiError(
      "internal",
      `server misconfigured: ${problem}; set TOKEN_SECRET to at least 32 random bytes (wrangler secret put TOKEN_SECRET; locally npm start writes one into .dev.vars)`,
    );
  }
  await next();
});

app.get(
  "/health",
  describeRoute({ operationId: "health", tags: ["meta"], summary: "Liveness", security: PUBLIC, responses: { 200: json("Up", Health) } }),
  (c) => c.json({ ok: true }),
);
app.get(
  "/openapi.json",
  describeRoute({
    operationId: "openapi",
    tags: ["meta"],
    summary: "This OpenAPI 3.1 document",
    security: PUBLIC,
    responses: { 200: { description: "The document", content: { "application/json": { schema: { type: "object" } } } } },
  }),
  openApiDocument(app),
);
// Sockets first: their routes authenticate with ?token= as well as the header.
app.route("/", sockets);
app.route("/", tickets);
app.route("/", syncCursor);
app.route("/", privacy);
app.route("/", accounts);
app.route("/", conversations);
app.route("/", messageChanges);
app.route("/", media);
app.route("/", mls);
app.route("/", push);
app.route("/", calls);

app.notFound(() => new ApiError("not_found", "no such route").toResponse());
app.onError((err) => toErrorResponse(err));
