/** `POST /v1/sync/ticket`: a short-lived, single-use stand-in for the token in WebSocket URLs. */
import { Hono } from "hono";
import { z } from "zod";
import { TICKET_TTL_MS, ticketStub } from "../lib/tickets";
import { b64uEncode } from "../push";
import { requireAuth } from "../middleware/auth";
import { describeRoute, errors, json } from "../openapi/describe";
import type { AppEnv } from "../types";


const SocketTicketResponse = z
  .object({
    ticket: z.string().describe("Pass as ?ticket= instead of ?token= on /v1/sync or /v1/conversations/{id}/ws; accepted once"),
    expires_at: z.number().int().describe("ms since the epoch; the ticket is refused after it"),
  })
  .meta({ id: "SocketTicket" });

export const tickets = new Hono<AppEnv>();

const ticketDoc = describeRoute({
  operationId: "createSocketTicket",
  tags: ["live"],
  summary: "A single-use ticket for opening a WebSocket",
  description:
    "Tokens in URLs can end up in logs. A ticket is accepted once, within 60 s, as ?ticket= on either WebSocket " +
    "endpoint in place of ?token=, and stands for the calling device (and its token's expiry).",
  responses: { 200: json("The ticket", SocketTicketResponse), ...errors("unauthorized") },
});
tickets.post("/sync/ticket", ticketDoc, requireAuth(), async (c) => {
  const { userId, deviceId, exp } = c.get("auth");
  const ticket = b64uEncode(crypto.getRandomValues(new Uint8Array(32)));
  const expiresAt = Date.now() + TICKET_TTL_MS;
  await ticketStub(c.env, ticket).issue({ userId, deviceId, exp }, expiresAt);
  return c.json({ ticket, expires_at: expiresAt });
});
