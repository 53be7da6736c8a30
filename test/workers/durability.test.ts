/**
 * The guarantees that live inside the objects: ordering under concurrency, fan-out that
 * survives a crash between ack and delivery, idempotent inboxes, and hibernation.
 */
import { abortAllDurableObjects, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { toWire } from "../../objects/wire-events";
import { describe, expect, it } from "vitest";
import type { Conversation } from "../../objects/conversation";
import { call, group, openSocket, register, send } from "./helpers";

const conversationStub = (id: string) => env.CONVERSATION.get(env.CONVERSATION.idFromName(id));
const inboxStub = (userId: string) => env.INBOX.get(env.INBOX.idFromName(userId));

/** Message events in a user's inbox log for one conversation, as (seq) in log order. */
async function inboxSeqs(userId: string, conversationId: string): Promise<number[]> {
  return runInDurableObject(inboxStub(userId), (_, state) =>
    state.storage.sql
      .exec<{ seq: number }>("SELECT seq FROM log WHERE type = 'message' AND conversation_id = ? ORDER BY cursor", conversationId)
      .toArray()
      .map((r) => r.seq),
  );
}

/** Makes this instance's fan-out fail, as if every inbox were unreachable, until the object restarts. */
async function breakFanOut(conversationId: string) {
  await runInDurableObject<Conversation, void>(conversationStub(conversationId), (instance) => {
    const fanout = (instance as unknown as { fanout: { env: Env } }).fanout;
    const unreachable = { get: () => ({ ingest: () => Promise.reject(new Error("inbox unreachable")) }), idFromName: () => ({}) };
    fanout.env = { ...fanout.env, INBOX: unreachable as unknown as Env["INBOX"] };
  });
}

describe("ordering", () => {
  it("20 concurrent senders x 50 messages get seq 1..1000, each client_message_id once", async () => {
    const owner = await register();
    const senders = await Promise.all(Array.from({ length: 19 }, () => register()));
    const id = await group(owner, senders);
    const all = [owner, ...senders];
    await Promise.all(
      all.map(async (s, i) => {
        for (let n = 0; n < 50; n++) {
          const res = await send(s, id, `s${i}-m${n}`);
          expect(res.status).toBe(201);
        }
      }),
    );
    const seqs: number[] = [];
    const ids = new Set<string>();
    for (let after = 0; ; ) {
      const page = await call("GET", `/conversations/${id}/messages?after_seq=${after}&limit=200`, { token: owner.token });
      for (const m of page.json.messages) {
        seqs.push(m.seq);
        ids.add(`${m.sender_id}/${m.client_message_id}`);
      }
      if (page.json.next_after_seq === null) break;
      after = page.json.next_after_seq;
    }
    expect(seqs).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(ids.size).toBe(1000);
  }, 60_000);
});

describe("fan-out", () => {
  it("delivers an acked message after a crash between ack and fan-out, exactly once", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    await expect.poll(() => inboxSeqs(b.user_id, id)).toEqual([]);

    await breakFanOut(id);
    const acked = await send(a, id, "during-outage");
    expect(acked.status).toBe(201);
    await new Promise((r) => setTimeout(r, 200));
    expect(await inboxSeqs(b.user_id, id)).toEqual([]);

    // The process dies: in-memory state is gone, storage and the armed alarm remain.
    await abortAllDurableObjects();
    expect(await runDurableObjectAlarm(conversationStub(id))).toBe(true);
    expect(await inboxSeqs(b.user_id, id)).toEqual([1]);
    expect(await inboxSeqs(a.user_id, id)).toEqual([1]);

    // Running the drain again delivers nothing twice.
    await runDurableObjectAlarm(conversationStub(id));
    await send(a, id, "after-recovery");
    await expect.poll(() => inboxSeqs(b.user_id, id)).toEqual([1, 2]);
  });

  it("a retried send after a crash returns the original and is delivered once", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    const first = await send(a, id, "retry-me", "hello");
    expect(first.status).toBe(201);
    await abortAllDurableObjects();
    const again = await send(a, id, "retry-me", "hello");
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    await expect.poll(() => inboxSeqs(b.user_id, id)).toEqual([1]);
    const history = await call("GET", `/conversations/${id}/messages`, { token: b.token });
    expect(history.json.messages).toHaveLength(1);
  });

  it("inboxes apply a repeated batch once", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    await send(a, id, "once");
    await expect.poll(() => inboxSeqs(b.user_id, id)).toEqual([1]);
    const owed = await runInDurableObject(conversationStub(id), (instance) => {
      const store = (instance as unknown as { store: import("../../objects/conversation-store").ConversationStore }).store;
      const member = store.member(b.user_id)!;
      return store.owedTo({ ...member, fed_upto: 0 }, 100);
    });
    const batch = { userId: b.user_id, conversationId: id, events: owed.events.map(toWire), upto: owed.upto };
    await inboxStub(b.user_id).ingest(batch);
    await inboxStub(b.user_id).ingest(batch);
    expect(await inboxSeqs(b.user_id, id)).toEqual([1]);
  });

  it("retries with backoff while an inbox stays unreachable", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    await expect.poll(() => inboxSeqs(b.user_id, id)).toEqual([]);
    await breakFanOut(id);
    await send(a, id, "m1");
    expect(await runDurableObjectAlarm(conversationStub(id))).toBe(true);
    // Still failing: the alarm re-armed itself rather than giving up.
    const next = await runInDurableObject(conversationStub(id), (_, state) => state.storage.getAlarm());
    expect(next).not.toBeNull();
    expect(await inboxSeqs(b.user_id, id)).toEqual([]);
    await abortAllDurableObjects(); // the outage ends with a fresh instance
    await runDurableObjectAlarm(conversationStub(id));
    expect(await inboxSeqs(b.user_id, id)).toEqual([1]);
  });
});

describe("hibernation", () => {
  it("conversation sockets keep identity and relay after eviction", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    const sa = (await openSocket(`/conversations/${id}/ws`, a.token)).socket!;
    const sb = (await openSocket(`/conversations/${id}/ws`, b.token)).socket!;

    await evictDurableObject(conversationStub(id));

    sa.send({ type: "send", client_message_id: "after-evict", kind: "text", content: "still here" });
    const sent = await sa.waitFor((f) => f.type === "sent");
    expect(sent.message).toMatchObject({ seq: 1, sender_id: a.user_id, sender_device_id: a.device_id });
    const got = await sb.waitFor((f) => f.type === "message");
    expect(got.message.client_message_id).toBe("after-evict");

    await evictDurableObject(conversationStub(id));
    sb.send({ type: "typing", state: "start" });
    const typing = await sa.waitFor((f) => f.type === "typing");
    expect(typing).toMatchObject({ user_id: b.user_id, state: "start" });

    sb.send({ type: "read", up_to_seq: 1 });
    const receipt = await sa.waitFor((f) => f.type === "receipt");
    expect(receipt).toMatchObject({ user_id: b.user_id, kind: "read", up_to_seq: 1 });
  });

  it("device sockets keep streaming after the inbox is evicted", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    const device = (await openSocket(`/sync?since=0`, b.token)).socket!;
    await device.waitFor((f) => f.type === "conversation");
    await evictDurableObject(inboxStub(b.user_id));
    await send(a, id, "to-hibernated");
    const event = await device.waitFor((f) => f.type === "message");
    expect(event.message.client_message_id).toBe("to-hibernated");
    expect(typeof event.cursor).toBe("string");
  });

  it("a typing start not renewed ends by itself after 6 s", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    const sa = (await openSocket(`/conversations/${id}/ws`, a.token)).socket!;
    const sb = (await openSocket(`/conversations/${id}/ws`, b.token)).socket!;
    sb.send({ type: "typing", state: "start" });
    await sa.waitFor((f) => f.type === "typing" && f.state === "start");
    const started = Date.now();
    await evictDurableObject(conversationStub(id));
    const stop = await sa.waitFor((f) => f.type === "typing" && f.state === "stop", 10_000);
    expect(stop.user_id).toBe(b.user_id);
    expect(Date.now() - started).toBeGreaterThan(4_000);
  }, 15_000);
});

describe("device socket replay", () => {
  it("reconnecting with the last cursor misses nothing and repeats nothing", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    const first = (await openSocket(`/sync?since=0`, b.token)).socket!;
    await send(a, id, "one");
    await send(a, id, "two");
    const two = await first.waitFor((f) => f.type === "message" && f.message.client_message_id === "two");
    first.ws.close(1000, "bye");

    await send(a, id, "three");
    await send(a, id, "four");
    await expect.poll(() => inboxSeqs(b.user_id, id)).toEqual([1, 2, 3, 4]);

    const second = (await openSocket(`/sync?since=${two.cursor}`, b.token)).socket!;
    await second.waitFor((f) => f.type === "message" && f.message.client_message_id === "four");
    await send(a, id, "five");
    await second.waitFor((f) => f.type === "message" && f.message.client_message_id === "five");
    const messages = second.frames.filter((f) => f.type === "message").map((f) => f.message.client_message_id);
    expect(messages).toEqual(["three", "four", "five"]);

    const fresh = (await openSocket(`/sync`, b.token)).socket!;
    await send(a, id, "six");
    await fresh.waitFor((f) => f.type === "message");
    expect(fresh.frames.filter((f) => f.type === "message").map((f) => f.message.client_message_id)).toEqual(["six"]);
  });
});
