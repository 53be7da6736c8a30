/** ICE servers for calls: CONTRACT.md section 11. Signalling itself runs on the conversation socket. */
import { Hono } from "hono";
import { z } from "zod";
import { iceConfig, iceServersFor, TurnUnavailable } from "../calls/ice-servers";
import { requireAuth } from "../middleware/auth";
import { describeRoute, errors, json } from "../openapi/describe";
import type { AppEnv } from "../types";

export const calls = new Hono<AppEnv>();

const IceServersAnswer = z
  .object({
    ice_servers: z.array(
      z.object({
        urls: z.union([z.string(), z.array(z.string())]),
        username: z.string().optional(),
        credential: z.string().optional(),
      }),
    ),
    ttl: z.number().int().describe("seconds the credentials stay valid"),
  })
  .meta({ id: "IceServers" });

const iceDoc = describeRoute({
  operationId: "getIceServers",
  tags: ["calls"],
  summary: "ICE servers for RTCPeerConnection: short-lived TURN credentials, or the configured STUN list",
  responses: { 200: json("The servers", IceServersAnswer), ...errors("unauthorized") },
});

calls.get("/calls/ice-servers", iceDoc, requireAuth(), async (c) => {
  const config = iceConfig(c.env);
  try {
    return c.json(await iceServersFor(c.get("auth").userId, config));
  } catch (err) {
    if (!(err instanceof TurnUnavailable)) throw err;
    // Most calls connect without a relay: better STUN only, briefly, than no call at all.
    console.error(err.message);
    return c.json({ ice_servers: config.staticServers, ttl: 60 });
  }
});
