/**
 * `GET /v1/sync/cursor`: the device socket's current position. The device socket replays
 * nothing without `since`, so a device that has never connected would miss what was made
 * for it before its first connect (an MLS welcome, above all): the SDK asks for this right
 * after signing in, before it uploads key packages, and connects with it the first time.
 */
import { Hono } from "hono";
import { z } from "zod";
import { inboxStub } from "../../shared/stubs";
import { requireAuth } from "../middleware/auth";
import { describeRoute, errors, json } from "../openapi/describe";
import type { AppEnv } from "../types";

const SyncCursor = z
  .object({ cursor: z.string().describe("Pass as ?since= on /v1/sync: every event after this moment is replayed") })
  .meta({ id: "SyncCursor" });

export const syncCursor = new Hono<AppEnv>();

const cursorDoc = describeRoute({
  operationId: "getSyncCursor",
  tags: ["live"],
  summary: "The device socket's current cursor",
  responses: { 200: json("The cursor", SyncCursor), ...errors("unauthorized") },
});
syncCursor.get("/sync/cursor", cursorDoc, requireAuth(), async (c) => {
  return c.json({ cursor: await inboxStub(c.env, c.get("auth").userId).headCursor() });
});
