/** The Worker entry: the Hono app, and the Durable Object classes it routes to. */
import { Conversation } from "../objects/conversation";
import { Inbox } from "../objects/inbox";
import { Limiter } from "../objects/limiter";
import type { PushJob } from "../objects/push-subscriptions";
import { SocketTicket } from "../objects/ticket";
import { app } from "./app";
import { countInvocation, installMeter, METER_PATH, meterEnabled, meterSnapshot } from "./lib/meter";
import { deliverPushes } from "./queue";

export { Conversation, Inbox, Limiter, SocketTicket };

/** The bench's metering (worker/lib/meter.ts): off unless BENCH_METER is "1". */
function metered(env: Env): boolean {
  if (!meterEnabled(env)) return false;
  installMeter(env, [Conversation, Inbox, Limiter, SocketTicket]);
  countInvocation();
  return true;
}

export default {
  fetch: (request, env, ctx) => {
    if (metered(env) && new URL(request.url).pathname === METER_PATH) return Response.json(meterSnapshot());
    return app.fetch(request, env, ctx);
  },
  queue: (batch, env) => {
    metered(env);
    return deliverPushes(batch as MessageBatch<PushJob>, env);
  },
} satisfies ExportedHandler<Env>;
