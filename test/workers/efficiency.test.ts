/**
 * Issue 12: the cheaper message path keeps its guarantees — leased send tokens never
 * exceed the bucket, idle inboxes get every message (batched) in order, inboxes report
 * whether a device socket is open, and a batch is logged once whatever the retries.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { toWire } from "../../objects/wire-events";
import { describe, expect, it } from "vitest";
import { leaseTokens, RATE_LIMIT_SCHEMA } from "../../objects/rate-limit";
import { SendLeases } from "../../objects/send-leases";
import { call, group, openSocket, register, send } from "./helpers";

const inboxStub = (userId: string) => env.INBOX.get(env.INBOX.idFromName(userId));

/** Message seqs in a user's inbox log for one conversation, in log order. */
const inboxSeqs = (userId: string, conversationId: string) =>
  runInDurableObject(inboxStub(userId), (_, state) =>
    state.storage.sql
      .exec<{ seq: number }>("SELECT seq FROM log WHERE type = 'message' AND conversation_id = ? ORDER BY cursor", conversationId)
      .toArray()
      .map((r) => r.seq),
  );

describe("send-token leases", () => {
  it("hand out blocks only from the top quarter of the bucket, single tokens below it, and refuse when empty", async () => {
    const stub = env.LIMITER.get(env.LIMITER.idFromName(`lease-${crypto.randomUUID()}`));
    await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      sql.exec(RATE_LIMIT_SCHEMA.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"));
      const now = 1_000_000;
      const first = leaseTokens(sql, "t", 100, 64, 0, now);
      expect(first).toEqual({ ok: true, granted: 25 });
      let granted = first.ok ? first.granted : 0;
      for (;;) {
        const next = leaseTokens(sql, "t", 100, 64, 0, now);
        if (!next.ok) {
          expect(next.retryAfterSeconds).toBeGreaterThanOrEqual(1);
          break;
        }
        expect(next.granted).toBe(1);
        granted += next.granted;
      }
      expect(granted).toBe(100);
      // Unspent tokens given back are there to be taken again.
      expect(leaseTokens(sql, "t", 100, 1, 3, now)).toEqual({ ok: true, granted: 1 });
    });
  });

  it("grow the block while a sender keeps sending and share one inbox call between concurrent sends", async () => {
    const asked: number[] = [];
    const leases = new SendLeases(1_000, async (_user, want) => {
      asked.push(want);
      await new Promise((r) => setTimeout(r, 5));
      return { ok: true, granted: want };
    });
    const results = await Promise.all(Array.from({ length: 3 }, () => leases.take("u1")));
    expect(results.every((r) => r.ok)).toBe(true);
    for (let i = 0; i < 12; i++) expect((await leases.take("u1")).ok).toBe(true);
    // 15 sends: blocks of 1, 2, 4, 8 (each spent within the lease time), never one call per send.
    expect(asked).toEqual([1, 2, 4, 8]);
    const refused = new SendLeases(100, async () => ({ ok: false, retryAfterSeconds: 7 }));
    expect(await refused.take("u2")).toEqual({ ok: false, retryAfterSeconds: 7 });
  });

  it("the one bucket of SEND_RATE_PER_MINUTE still holds across conversations", async () => {
    const a = await register();
    const b = await register();
    const first = await group(a, [b], "one");
    const second = await group(a, [b], "two");
    let sent = 0;
    const t0 = Date.now();
    for (let i = 0; i < 60; i++) if ((await send(a, first, `a${i}`)).status === 201) sent += 1;
    for (let i = 0; i < 60; i++) if ((await send(a, second, `b${i}`)).status === 201) sent += 1;
    const refilled = Math.ceil((Date.now() - t0) / 600);
    // 100 tokens plus what refilled meanwhile (one per 600 ms), never more; none stranded in a lease.
    expect(sent).toBeGreaterThanOrEqual(100);
    expect(sent).toBeLessThanOrEqual(100 + refilled + 1);
  });
});

describe("fan-out to inboxes", () => {
  it("an inbox with no device socket gets every message in order, and its list counts them all", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    const ws = (await openSocket(`/conversations/${id}/ws`, a.token)).socket!;
    for (let i = 0; i < 30; i++) ws.send({ type: "send", client_message_id: `m${i}`, kind: "text", content: `m${i}` });
    await ws.waitFor((f) => f.type === "sent" && f.client_message_id === "m29");
    await expect.poll(() => inboxSeqs(b.user_id, id), { timeout: 8_000 }).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    const list = await call("GET", "/conversations", { token: b.token });
    expect(list.json.conversations[0]).toMatchObject({ conversation_id: id, unread_count: 30, last_message: { seq: 30 } });
  });

  it("an inbox answers whether a device socket is open there, and applies a repeated batch once", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    await send(a, id, "one");
    await expect.poll(() => inboxSeqs(b.user_id, id), { timeout: 8_000 }).toEqual([1]);
    const events = [{ feedId: 1_000_001, event: { type: "receipt" as const, conversation_id: id, user_id: a.user_id, kind: "read" as const, up_to_seq: 1 } }].map(toWire);
    expect(await inboxStub(b.user_id).ingest({ userId: b.user_id, conversationId: id, events, upto: 1_000_001 })).toEqual({ streaming: false });
    const device = (await openSocket("/sync?since=0", b.token)).socket!;
    await device.waitFor((f) => f.type === "message");
    expect(await inboxStub(b.user_id).ingest({ userId: b.user_id, conversationId: id, events, upto: 1_000_001 })).toEqual({ streaming: true });
    const receipts = await runInDurableObject(inboxStub(b.user_id), (_, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM log WHERE type = 'receipt' AND conversation_id = ?", id).one().n,
    );
    expect(receipts).toBe(1);
  });

  it("logs a message the log already holds once, and the rest of its batch with the right cursors", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    const first = (await send(a, id, "one")).json;
    await expect.poll(() => inboxSeqs(b.user_id, id), { timeout: 8_000 }).toEqual([1]);
    const device = (await openSocket("/sync?since=0", b.token)).socket!;
    await device.waitFor((f) => f.type === "message" && f.message.seq === 1);
    // Past the inbox's feed position, yet holding seq 1 again: the log must keep one copy of it.
    const again = { ...first, content: "one" };
    const fresh = { ...first, seq: 2, message_id: "m_repeat_test", client_message_id: "repeat-2", content: "two" };
    const events = [
      { feedId: 2_000_001, event: { type: "message" as const, message: again } },
      { feedId: 2_000_002, event: { type: "message" as const, message: fresh } },
    ].map(toWire);
    await inboxStub(b.user_id).ingest({ userId: b.user_id, conversationId: id, events, upto: 2_000_002 });
    expect(await inboxSeqs(b.user_id, id)).toEqual([1, 2]);
    const streamed = await device.waitFor((f) => f.type === "message" && f.message.seq === 2);
    const replay = (await openSocket(`/sync?since=0`, b.token)).socket!;
    const replayed = await replay.waitFor((f) => f.type === "message" && f.message.seq === 2);
    expect(replayed.cursor).toBe(streamed.cursor);
    expect(device.frames.filter((f) => f.type === "message" && f.message.seq === 1)).toHaveLength(1);
  });
});
