/** The Worker entry: the Hono app, and the Durable Object classes it routes to. */
import type { PushJob } from "../objects/push-subscriptions";
import { app } from "./app";
import { deliverPushes } from "./queue";

export { Conversation } from "../objects/conversation";
export { Inbox } from "../objects/inbox";
export { Limiter } from "../objects/limiter";
export { SocketTicket } from "../objects/ticket";

export default {
  fetch: app.fetch,
  queue: (batch, env) => deliverPushes(batch as MessageBatch<PushJob>, env),
} satisfies ExportedHandler<Env>;
