/** Regressions found by the fuzz run (bench/fuzz). */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { toWire } from "../../objects/wire-events";
import { describe, expect, it } from "vitest";
import { BASE, call, group, register, send } from "./helpers";

const inboxStub = (userId: string) => env.INBOX.get(env.INBOX.idFromName(userId));

describe("hardening", () => {
  it("refuses lone surrogates instead of storing them altered", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    for (const body of [
      { client_message_id: "x\ud800", kind: "text", content: "hi" },
      { client_message_id: "ok-id", kind: "text", content: "broken \udfff" },
    ]) {
      const res = await call("POST", `/conversations/${id}/messages`, { token: a.token, body });
      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe("invalid_request");
    }
    const named = await call("POST", "/conversations", { token: a.token, body: { type: "group", name: "\ud83d", members: [] } });
    expect(named.status).toBe(400);
    // Well-formed astral characters are fine.
    expect((await send(a, id, "emoji-\ud83d\ude00", "\ud83d\ude00")).status).toBe(201);
    const history = await call("GET", `/conversations/${id}/messages`, { token: a.token });
    expect(history.json.messages.map((m: any) => m.client_message_id)).toEqual(["emoji-\ud83d\ude00"]);
  });

  it("refuses an oversized chunked body without a content-length", async () => {
    const a = await register();
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await exports.default.fetch(
      new Request(`${BASE}/conversations`, { method: "POST", body, headers: { authorization: `Bearer ${a.token}` }, duplex: "half" } as RequestInit),
    );
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).error.code).toBe("too_large");
  });

  it("ingests a large batch for a user with offline push subscriptions, one push per device", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    await inboxStub(b.user_id).putPushSubscription(b.device_id, {
      endpoint: "https://push.invalid/b",
      keys: { p256dh: "BCQribzsiuD1-yLVdUW3Hm2Ejwyp5zcmXeSAErcNrN83yTco5DDLo1DD1ngA1DKumWsaLN_1rof2aXNradIZiFI", auth: "AAAAAAAAAAAAAAAAAAAAAA" },
    });
    const message = (seq: number) => ({
      message_id: `m${seq}`,
      conversation_id: id,
      seq,
      sender_id: a.user_id,
      sender_device_id: a.device_id,
      client_message_id: `c${seq}`,
      kind: "text" as const,
      content: "x",
      created_at: Date.now(),
    });
    // Feed positions far beyond the real conversation's, as one 150-event batch.
    const events = Array.from({ length: 150 }, (_, i) => ({ feedId: 1000 + i, event: { type: "message" as const, message: message(1000 + i) } })).map(toWire);
    await inboxStub(b.user_id).ingest({ userId: b.user_id, conversationId: id, events, upto: 1149 });
    const state = await runInDurableObject(inboxStub(b.user_id), async (_, s) => ({
      logged: s.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM log WHERE type = 'message' AND seq >= 1000").one().n,
      staged: s.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM push_outbox").one().n,
    }));
    expect(state.logged).toBe(150);
    expect(state.staged).toBeLessThanOrEqual(1);
    await expect
      .poll(() => runInDurableObject(inboxStub(b.user_id), (_, s) => s.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM push_outbox").one().n))
      .toBe(0);
  });
});
