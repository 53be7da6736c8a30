/** The Worker entry: the Hono app, and the Durable Object classes it routes to. */
import { app } from "./app";

export { Conversation } from "../objects/conversation";
export { Inbox } from "../objects/inbox";

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
