/** The HTTP surface: every route under /v1, every error in the contract's shape. */
import { Hono } from "hono";
import { Health } from "../protocol/responses";
import { ApiError, toErrorResponse } from "./errors";
import { describeRoute, json, PUBLIC } from "./openapi/describe";
import { tokenSecretProblem } from "./lib/token";
import { openApiDocument } from "./openapi/document";
import { accounts } from "./routes/accounts";
import { calls } from "./routes/calls";
import { conversations } from "./routes/conversations";
import { mls } from "./routes/mls";
import { push } from "./routes/push";
import { sockets } from "./routes/sockets";
import type { AppEnv } from "./types";

export const app = new Hono<AppEnv>().basePath("/v1");

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
app.route("/", accounts);
app.route("/", conversations);
app.route("/", mls);
app.route("/", push);
app.route("/", calls);

app.notFound(() => new ApiError("not_found", "no such route").toResponse());
app.onError((err) => toErrorResponse(err));
