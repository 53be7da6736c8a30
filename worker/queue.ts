/**
 * The push queue's consumer: one Web Push per job. Delivery is at least once; a repeat
 * names the same conversation and seq, and shares a Topic, so the device shows it once.
 */
import type { PushJob } from "../objects/push-subscriptions";
import { pushConfig } from "./push/config";
import { inboxStub } from "../shared/stubs";
import { buildPushRequest, pushOutcome, WebPushError } from "./push";

/** How long a push service keeps a notification for a device that is offline. */
const PUSH_TTL_SECONDS = 24 * 3600;
const MAX_DELAY_SECONDS = 3600;

export async function deliverPushes(batch: MessageBatch<PushJob>, env: Env): Promise<void> {
  const config = pushConfig(env);
  const vapid = { publicKey: env.VAPID_PUBLIC_KEY, privateKey: env.VAPID_PRIVATE_KEY, subject: env.VAPID_SUBJECT };
  const backoff = (attempts: number) => Math.min(MAX_DELAY_SECONDS, config.retryBaseSeconds * 2 ** (attempts - 1));

  await Promise.all(
    batch.messages.map(async (message) => {
      const job = message.body;
      const forget = () => inboxStub(env, job.userId).deletePushSubscription(job.deviceId, job.subscription.endpoint);
      let response: Response;
      try {
        const request = await buildPushRequest({
          subscription: job.subscription,
          payload: JSON.stringify(job.payload),
          vapid,
          ttlSeconds: PUSH_TTL_SECONDS,
          urgency: "high",
          topic: job.payload.conversation_id.slice(0, 32),
          allowLoopbackHttp: config.allowLoopbackHttp,
          hosts: config.hosts,
        });
        response = await fetch(request);
      } catch (err) {
        if (err instanceof WebPushError) {
          // A subscription that can never be used (its keys or endpoint are unusable).
          console.warn(`dropping push subscription of ${job.deviceId}: ${err.message}`);
          await forget();
          return message.ack();
        }
        return message.retry({ delaySeconds: backoff(message.attempts) });
      }
      const outcome = pushOutcome(response);
      switch (outcome.kind) {
        case "delivered":
          return message.ack();
        case "gone":
          await forget();
          return message.ack();
        case "retry":
          return message.retry({ delaySeconds: outcome.retryAfterSeconds ?? backoff(message.attempts) });
        case "rejected":
          // A 4xx other than 404/410/429 (a bad request, VAPID refused, too large): the same
          // request would be refused again, so it is dropped rather than retried.
          console.warn(`push service refused ${new URL(job.subscription.endpoint).host}: ${outcome.status}; dropped`);
          return message.ack();
      }
    }),
  );
}
