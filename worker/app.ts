/** The HTTP surface: every route under /v1, every error in the contract's shape. */
import { Hono } from "hono";
import { ApiError, toErrorResponse } from "./errors";
import { accounts } from "./routes/accounts";
import { conversations } from "./routes/conversations";
import { push } from "./routes/push";
import { sockets } from "./routes/sockets";
import type { AppEnv } from "./types";

export const app = new Hono<AppEnv>().basePath("/v1");

app.get("/health", (c) => c.json({ ok: true }));
// Sockets first: their routes authenticate with ?token= as well as the header.
app.route("/", sockets);
app.route("/", accounts);
app.route("/", conversations);
app.route("/", push);

app.notFound(() => new ApiError("not_found", "no such route").toResponse());
app.onError((err) => toErrorResponse(err));
