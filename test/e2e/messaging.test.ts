/**
 * Messages, ordering, idempotency, history paging, markers, limits and the conversation
 * list (CONTRACT.md sections 2, 4 and 5) against the real server.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { closeAll, cmid, eventually, sleep, type Session, type Socket } from "./client";
import { useServer } from "./setup";

const ctx = useServer();

const expectError = (res: { status: number; json: any }, status: number, code: string) => {
  expect(res.status, JSON.stringify(res.json)?.slice(0, 300)).toBe(status);
  expect(res.json).toMatchObject({ error: { code, message: expect.any(String) } });
};

const seqs = (messages: any[]) => messages.map((m) => m.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("sending", () => {
  it("201 the message, with every field of the contract", async () => {
    const [a, b] = await Promise.all([ctx.api.register("sa"), ctx.api.register("sb")]);
    const conv = await ctx.api.group(a, [b]);
    const id = cmid();
    const res = await ctx.api.send(a, conv, id, "hello");
    expect(res.status).toBe(201);
    expect(res.json).toEqual({
      message_id: expect.any(String),
      conversation_id: conv,
      seq: 1,
      sender_id: a.user_id,
      sender_device_id: a.device_id,
      client_message_id: id,
      kind: "text",
      content: "hello",
      created_at: expect.any(Number),
    });
    expect(Math.abs(res.json.created_at - Date.now())).toBeLessThan(60_000);
    const second = await ctx.api.send(b, conv, cmid(), "hi");
    expect(second.json.seq).toBe(2);
    const { json } = await ctx.api.get(`/conversations/${conv}/messages`, b.token);
    expect(json.messages).toEqual([res.json, second.json]);
  });

  it("kind encrypted carries any content untouched; bad kinds and missing fields are 400", async () => {
    const a = await ctx.api.register("kind");
    const conv = await ctx.api.group(a, []);
    const cipher = "\u0000\u00ff🔐 ciphertext \"quoted\" \\ back\nslash";
    const enc = await ctx.api.post(`/conversations/${conv}/messages`, a.token, { client_message_id: cmid(), kind: "encrypted", content: cipher });
    expect(enc.status).toBe(201);
    expect(enc.json.content).toBe(cipher);
    expect(enc.json.kind).toBe("encrypted");
    expectError(await ctx.api.post(`/conversations/${conv}/messages`, a.token, { client_message_id: cmid(), kind: "gif", content: "x" }), 400, "invalid_request");
    expectError(await ctx.api.post(`/conversations/${conv}/messages`, a.token, { kind: "text", content: "x" }), 400, "invalid_request");
    expectError(await ctx.api.post(`/conversations/${conv}/messages`, a.token, { client_message_id: cmid(), kind: "text" }), 400, "invalid_request");
    expectError(await ctx.api.call("POST", `/conversations/${conv}/messages`, { token: a.token, raw: "{'single': 'quotes'}" }), 400, "invalid_request");
    const all = await ctx.api.allMessages(a, conv);
    expect(all).toHaveLength(1);
  });

  it("20 concurrent senders × 50 messages (HTTP and WebSocket) into one group: seq exactly 1..1000, each message once", async () => {
    const SENDERS = 20;
    const EACH = 50;
    const admin = await ctx.api.register("load");
    const senders = await Promise.all(Array.from({ length: SENDERS }, (_, i) => ctx.api.register(`ld${i}`)));
    const observerSync = await ctx.api.sync(admin);
    await observerSync.roundTrip();
    const conv = await ctx.api.group(admin, senders, "load");
    const observerWs = await ctx.api.convSocket(admin, conv);
    // the admin's device position before the burst (the group's creation event)
    const created = await observerSync.waitFor((f) => f.type === "conversation" && f.conversation.conversation_id === conv, 5_000, "creation");
    const [wsSenders, httpSenders] = [senders.slice(0, SENDERS / 2), senders.slice(SENDERS / 2)];
    const sockets = await Promise.all(wsSenders.map((s) => ctx.api.convSocket(s, conv)));
    await Promise.all([observerWs, observerSync, ...sockets].map((s) => s.roundTrip()));

    const expected = new Map<string, string>(); // client_message_id → sender
    const acked: any[] = [];

    const viaWs = async (s: Session, ws: Socket) => {
      const ids = Array.from({ length: EACH }, (_, i) => `${s.handle}-ws-${i}`);
      for (const id of ids) expected.set(id, s.user_id);
      for (const id of ids) ws.send({ type: "send", client_message_id: id, kind: "text", content: `content of ${id}` });
      const sent = await ws.waitForCount((f) => f.type === "sent" || (f.type === "error" && f.ref), EACH, 150_000, "sent");
      const errors = sent.filter((f) => f.type === "error");
      expect(errors, JSON.stringify(errors[0])).toEqual([]);
      for (const f of sent) {
        expect(f.message.client_message_id).toBe(f.client_message_id);
        expect(f.message.sender_id).toBe(s.user_id);
        acked.push(f.message);
      }
    };
    const viaHttp = async (s: Session) => {
      const ids = Array.from({ length: EACH }, (_, i) => `${s.handle}-http-${i}`);
      for (const id of ids) expected.set(id, s.user_id);
      let next = 0;
      // five requests in flight per sender
      await Promise.all(
        Array.from({ length: 5 }, async () => {
          while (next < ids.length) {
            const id = ids[next++]!;
            const res = await ctx.api.send(s, conv, id, `content of ${id}`);
            expect(res.status, res.text).toBe(201);
            acked.push(res.json);
          }
        }),
      );
    };

    const started = Date.now();
    await Promise.all([...wsSenders.map((s, i) => viaWs(s, sockets[i]!)), ...httpSenders.map((s) => viaHttp(s))]);
    const took = Date.now() - started;
    console.log(`1000 messages from 20 concurrent senders acked in ${took} ms`);

    const TOTAL = SENDERS * EACH;
    expect(acked).toHaveLength(TOTAL);
    expect(seqs(acked).sort((x, y) => x - y)).toEqual(range(1, TOTAL));

    // history: paged with after_seq, exactly 1..1000, each client_message_id once, as acked
    const history = await ctx.api.allMessages(admin, conv, 200);
    expect(seqs(history)).toEqual(range(1, TOTAL));
    const byCmid = new Map<string, any>();
    for (const m of history) {
      expect(byCmid.has(m.client_message_id), `duplicate ${m.client_message_id}`).toBe(false);
      byCmid.set(m.client_message_id, m);
      expect(m.sender_id).toBe(expected.get(m.client_message_id));
      expect(m.content).toBe(`content of ${m.client_message_id}`);
    }
    expect(byCmid.size).toBe(TOTAL);
    const bySeq = new Map(history.map((m) => [m.seq, m]));
    for (const a of acked) expect(bySeq.get(a.seq)).toEqual(a);

    // every open conversation socket got each message exactly once
    for (const ws of [observerWs, ...sockets]) {
      const got = await ws.waitForCount((f) => f.type === "message", TOTAL, 60_000, "message broadcasts");
      expect(new Set(got.map((f) => f.message.seq)).size).toBe(TOTAL);
    }
    // the observer's device socket got each message once, in seq order, with increasing cursors
    const events = await observerSync.waitForCount((f) => f.type === "message" && f.message.conversation_id === conv, TOTAL, 60_000, "device events");
    expect(events.map((e) => e.message.seq)).toEqual(range(1, TOTAL));
    // cursors are opaque: each event has its own
    const cursors = observerSync.frames.filter((f) => f.cursor !== undefined).map((f) => f.cursor);
    expect(cursors.every((c) => typeof c === "string")).toBe(true);
    expect(new Set(cursors).size).toBe(cursors.length);
    await sleep(300);
    expect(observerSync.ofType("message").filter((f) => f.message.conversation_id === conv)).toHaveLength(TOTAL);
    // a device resuming from before the burst gets all of it replayed, once, in order, with the same cursors
    const late = await ctx.api.sync(admin, created.cursor);
    const replayed = await late.waitForCount((f) => f.type === "message" && f.message.conversation_id === conv, TOTAL, 30_000, "replayed");
    await late.roundTrip();
    expect(replayed.map((e) => e.message.seq)).toEqual(range(1, TOTAL));
    expect(replayed.map((e) => e.cursor)).toEqual(events.map((e) => e.cursor));
    expect(late.frames.filter((f) => f.type === "message")).toHaveLength(TOTAL);
    await closeAll([observerWs, observerSync, late, ...sockets]);
    // generous: on a loaded 2-core machine the burst alone has taken from 20 s to 50 s
  }, 240_000);
});

describe("idempotency", () => {
  let a: Session;
  let b: Session;
  let conv: string;
  beforeAll(async () => {
    [a, b] = await Promise.all([ctx.api.register("ia"), ctx.api.register("ib")]);
    conv = await ctx.api.group(a, [b], "idem");
  });

  it("an HTTP resend of a client_message_id answers 200 with the original and stores nothing", async () => {
    const id = cmid("dup");
    const first = await ctx.api.send(a, conv, id, "original");
    expect(first.status).toBe(201);
    const again = await ctx.api.send(a, conv, id, "original");
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    const changed = await ctx.api.send(a, conv, id, "different content this time");
    expect(changed.status).toBe(200);
    expect(changed.json).toEqual(first.json);
    // concurrent repeats: still the one original
    const burst = await Promise.all(Array.from({ length: 5 }, () => ctx.api.send(a, conv, id, "original")));
    for (const r of burst) {
      expect(r.status).toBe(200);
      expect(r.json).toEqual(first.json);
    }
    const history = await ctx.api.allMessages(a, conv);
    expect(history.filter((m) => m.client_message_id === id)).toHaveLength(1);
    expect(seqs(history)).toEqual(range(1, history.length));
  });

  it("concurrent first sends of one client_message_id store it once: one 201, the rest 200", async () => {
    const id = cmid("race");
    const results = await Promise.all(Array.from({ length: 6 }, () => ctx.api.send(a, conv, id, "raced")));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    expect(new Set(results.map((r) => r.json.message_id)).size).toBe(1);
    const history = await ctx.api.allMessages(a, conv);
    expect(history.filter((m) => m.client_message_id === id)).toHaveLength(1);
  });

  it("idempotency is per sender: another user's identical client_message_id is a new message", async () => {
    const id = cmid("shared");
    const mine = await ctx.api.send(a, conv, id, "from a");
    const theirs = await ctx.api.send(b, conv, id, "from b");
    expect(mine.status).toBe(201);
    expect(theirs.status).toBe(201);
    expect(theirs.json.message_id).not.toBe(mine.json.message_id);
    expect(theirs.json.seq).toBe(mine.json.seq + 1);
  });

  it("a WebSocket resend answers `sent` with the original and broadcasts no second `message`", async () => {
    const wsA = await ctx.api.convSocket(a, conv);
    const wsB = await ctx.api.convSocket(b, conv);
    const syncB = await ctx.api.sync(b);
    await Promise.all([wsA.roundTrip(), wsB.roundTrip(), syncB.roundTrip()]);
    const id = cmid("wsdup");
    wsA.send({ type: "send", client_message_id: id, kind: "text", content: "once" });
    const sent = await wsA.waitFor((f) => f.type === "sent" && f.client_message_id === id, 5_000, "sent");
    await wsB.waitFor((f) => f.type === "message" && f.message.client_message_id === id, 5_000, "message");

    const from = wsA.frames.length;
    wsA.send({ type: "send", client_message_id: id, kind: "text", content: "once" });
    const resent = await wsA.waitFor((f) => f.type === "sent" && f.client_message_id === id, 5_000, "second sent", from);
    expect(resent.message).toEqual(sent.message);

    // A fresh message after the resend: once its broadcast arrives, any broadcast of the resend would have too.
    const marker = cmid("marker");
    wsA.send({ type: "send", client_message_id: marker, kind: "text", content: "marker" });
    for (const ws of [wsA, wsB]) {
      await ws.waitFor((f) => f.type === "message" && f.message.client_message_id === marker, 5_000, "marker");
      expect(ws.frames.filter((f) => f.type === "message" && f.message.client_message_id === id)).toHaveLength(1);
    }
    await syncB.waitFor((f) => f.type === "message" && f.message.client_message_id === marker, 5_000, "marker event");
    expect(syncB.frames.filter((f) => f.type === "message" && f.message.client_message_id === id)).toHaveLength(1);

    // across transports: an HTTP send repeated over the socket
    const crossId = cmid("cross");
    const viaHttp = await ctx.api.send(a, conv, crossId, "http first");
    expect(viaHttp.status).toBe(201);
    await wsB.waitFor((f) => f.type === "message" && f.message.client_message_id === crossId, 5_000, "cross message");
    const from2 = wsA.frames.length;
    wsA.send({ type: "send", client_message_id: crossId, kind: "text", content: "http first" });
    const crossSent = await wsA.waitFor((f) => f.type === "sent" && f.client_message_id === crossId, 5_000, "cross sent", from2);
    expect(crossSent.message).toEqual(viaHttp.json);
    const marker2 = cmid("marker2");
    wsA.send({ type: "send", client_message_id: marker2, kind: "text", content: "marker" });
    await wsB.waitFor((f) => f.type === "message" && f.message.client_message_id === marker2, 5_000, "marker2");
    expect(wsB.frames.filter((f) => f.type === "message" && f.message.client_message_id === crossId)).toHaveLength(1);

    const history = await ctx.api.allMessages(a, conv);
    expect(history.filter((m) => m.client_message_id === id)).toHaveLength(1);
    expect(history.filter((m) => m.client_message_id === crossId)).toHaveLength(1);
    expect(seqs(history)).toEqual(range(1, history.length));
    await closeAll([wsA, wsB, syncB]);
  });
});

describe("history paging", () => {
  let a: Session;
  let conv: string;
  let sent: any[];
  beforeAll(async () => {
    a = await ctx.api.register("page");
    conv = await ctx.api.group(a, [], "paging");
    sent = [];
    for (let i = 1; i <= 10; i++) sent.push(await ctx.api.sendOk(a, conv, cmid(`p${i}`), `message ${i}`));
  });

  const page = (q: string) => ctx.api.get(`/conversations/${conv}/messages${q}`, a.token);

  it("after_seq and limit: ascending, with next_after_seq until the end", async () => {
    const p1 = await page("?after_seq=3&limit=4");
    expect(p1.status).toBe(200);
    expect(seqs(p1.json.messages)).toEqual([4, 5, 6, 7]);
    expect(p1.json.messages).toEqual(sent.slice(3, 7));
    expect(p1.json.next_after_seq).toBe(7);
    const p2 = await page(`?after_seq=${p1.json.next_after_seq}&limit=4`);
    expect(seqs(p2.json.messages)).toEqual([8, 9, 10]);
    expect(p2.json.next_after_seq ?? null).toBeNull();
    const past = await page("?after_seq=10");
    expect(past.json.messages).toEqual([]);
    const zero = await page("?after_seq=0&limit=200");
    expect(seqs(zero.json.messages)).toEqual(range(1, 10));
  });

  it("before_seq and limit: the L messages just below N, ascending", async () => {
    const p = await page("?before_seq=6&limit=3");
    expect(p.status).toBe(200);
    expect(seqs(p.json.messages)).toEqual([3, 4, 5]);
    expect(seqs((await page("?before_seq=3&limit=10")).json.messages)).toEqual([1, 2]);
    expect((await page("?before_seq=1")).json.messages).toEqual([]);
  });

  it("no cursor: the newest page; the default limit is 50", async () => {
    expect(seqs((await page("?limit=3")).json.messages)).toEqual([8, 9, 10]);
    expect(seqs((await page("")).json.messages)).toEqual(range(1, 10));
  });

  it("limit 1 and 200 are fine; 0, 201, negative and non-numeric values are 400", async () => {
    expect((await page("?limit=1")).status).toBe(200);
    expect((await page("?limit=200")).status).toBe(200);
    for (const q of ["?limit=0", "?limit=201", "?limit=-1", "?limit=abc", "?after_seq=-1", "?before_seq=x", "?after_seq=1.5"]) {
      expectError(await page(q), 400, "invalid_request");
    }
  });

  it("a default page holds at most 50", async () => {
    const b = await ctx.api.register("page50");
    const c = await ctx.api.group(b, [], "fifty");
    await Promise.all(Array.from({ length: 60 }, (_, i) => ctx.api.sendOk(b, c, cmid(`f${i}`))));
    const res = await ctx.api.get(`/conversations/${c}/messages`, b.token);
    expect(seqs(res.json.messages)).toEqual(range(11, 60));
    const first = await ctx.api.get(`/conversations/${c}/messages?after_seq=0`, b.token);
    expect(seqs(first.json.messages)).toEqual(range(1, 50));
    expect(first.json.next_after_seq).toBe(50);
  });
});

describe("read and delivered markers", () => {
  it("204; receipts reach conversation sockets and device sockets; markers only move forward", async () => {
    const [a, b] = await Promise.all([ctx.api.register("ma"), ctx.api.register("mb")]);
    const conv = await ctx.api.group(a, [b], "markers");
    for (let i = 0; i < 5; i++) await ctx.api.sendOk(a, conv, cmid(`m${i}`));
    const wsA = await ctx.api.convSocket(a, conv);
    const wsB = await ctx.api.convSocket(b, conv);
    const syncA = await ctx.api.sync(a);
    const syncB = await ctx.api.sync(b);
    await Promise.all([wsA, wsB, syncA, syncB].map((s) => s.roundTrip()));

    const read3 = await ctx.api.post(`/conversations/${conv}/read`, b.token, { up_to_seq: 3 });
    expect(read3.status).toBe(204);
    const want = { type: "receipt", user_id: b.user_id, kind: "read", up_to_seq: 3 };
    for (const ws of [wsA, wsB]) {
      const r = await ws.waitFor((f) => f.type === "receipt", 5_000, "receipt");
      expect(r).toMatchObject(want);
    }
    for (const s of [syncA, syncB]) {
      const ev = await s.waitFor((f) => f.type === "receipt", 5_000, "receipt event");
      expect(ev).toMatchObject({ ...want, conversation_id: conv, cursor: expect.any(String) });
    }

    // backwards: 204, but nothing moves and nothing is announced
    expect((await ctx.api.post(`/conversations/${conv}/read`, b.token, { up_to_seq: 2 })).status).toBe(204);
    expect((await ctx.api.post(`/conversations/${conv}/read`, b.token, { up_to_seq: 3 })).status).toBe(204);
    expect((await ctx.api.post(`/conversations/${conv}/delivered`, b.token, { up_to_seq: 5 })).status).toBe(204);
    const delivered = { type: "receipt", user_id: b.user_id, kind: "delivered", up_to_seq: 5 };
    for (const ws of [wsA, wsB]) {
      await ws.waitFor((f) => f.type === "receipt" && f.kind === "delivered", 5_000, "delivered receipt");
      expect(ws.ofType("receipt").map(({ user_id, kind, up_to_seq }) => ({ type: "receipt", user_id, kind, up_to_seq }))).toEqual([want, delivered]);
    }
    for (const s of [syncA, syncB]) {
      await s.waitFor((f) => f.type === "receipt" && f.kind === "delivered", 5_000, "delivered event");
      expect(s.ofType("receipt").map((f) => [f.kind, f.up_to_seq])).toEqual([
        ["read", 3],
        ["delivered", 5],
      ]);
    }
    const listed = await eventually(async () => {
      const res = await ctx.api.get("/conversations", b.token);
      const c = res.json.conversations.find((x: any) => x.conversation_id === conv);
      return c && c.last_read_seq === 3 ? c : undefined;
    }, 2_500, "last_read_seq 3");
    expect(listed.unread_count).toBe(2);

    // over the conversation socket too
    wsB.send({ type: "read", up_to_seq: 5 });
    for (const ws of [wsA, wsB]) {
      const r = await ws.waitFor((f) => f.type === "receipt" && f.kind === "read" && f.up_to_seq === 5, 5_000, "ws read receipt");
      expect(r.user_id).toBe(b.user_id);
    }
    await syncA.waitFor((f) => f.type === "receipt" && f.kind === "read" && f.up_to_seq === 5, 5_000, "ws read event");
    await closeAll([wsA, wsB, syncA, syncB]);
  });

  it("bad marker bodies are 400", async () => {
    const a = await ctx.api.register("mbad");
    const conv = await ctx.api.group(a, [], "bad markers");
    await ctx.api.sendOk(a, conv);
    expectError(await ctx.api.post(`/conversations/${conv}/read`, a.token, {}), 400, "invalid_request");
    expectError(await ctx.api.post(`/conversations/${conv}/read`, a.token, { up_to_seq: "1" }), 400, "invalid_request");
    expectError(await ctx.api.post(`/conversations/${conv}/delivered`, a.token, { up_to_seq: -1 }), 400, "invalid_request");
    expectError(await ctx.api.post(`/conversations/${conv}/delivered`, a.token, { up_to_seq: 1.5 }), 400, "invalid_request");
    expectError(await ctx.api.call("POST", `/conversations/${conv}/read`, { token: a.token, raw: "nope" }), 400, "invalid_request");
  });
});

describe("limits", () => {
  it("content of 100,000 characters is fine; 100,001 is 413 too_large; nothing is stored", async () => {
    const a = await ctx.api.register("big");
    const conv = await ctx.api.group(a, [], "big");
    const ok = await ctx.api.send(a, conv, cmid("max"), "x".repeat(100_000));
    expect(ok.status).toBe(201);
    expect(ok.json.content).toHaveLength(100_000);
    const overId = cmid("over");
    expectError(await ctx.api.send(a, conv, overId, "x".repeat(100_001)), 413, "too_large");
    // characters, not bytes: 100,001 two-unit emoji halves... JavaScript length counts UTF-16 units
    const emojiId = cmid("emoji");
    expectError(await ctx.api.send(a, conv, emojiId, "😀".repeat(50_001)), 413, "too_large");
    const history = await ctx.api.allMessages(a, conv);
    expect(history.map((m) => m.client_message_id)).toEqual([ok.json.client_message_id]);
    // the rejected ids were never stored: sending them now creates them
    expect((await ctx.api.send(a, conv, overId, "small")).status).toBe(201);
    expect((await ctx.api.send(a, conv, emojiId, "small")).status).toBe(201);
  });

  it("a body over 256 KiB is 413 even when the content is within its character limit; nothing is stored", async () => {
    const a = await ctx.api.register("body");
    const conv = await ctx.api.group(a, [], "body");
    const id = cmid("fat");
    // 90,000 characters of a 3-byte character: 270,000 bytes of JSON
    expectError(await ctx.api.send(a, conv, id, "€".repeat(90_000)), 413, "too_large");
    const padded = JSON.stringify({ client_message_id: cmid("pad"), kind: "text", content: "x", padding: "y".repeat(300_000) });
    expectError(await ctx.api.call("POST", `/conversations/${conv}/messages`, { token: a.token, raw: padded }), 413, "too_large");
    // just under the limit is accepted when the content is within limits
    const fits = await ctx.api.send(a, conv, cmid("fits"), "€".repeat(80_000));
    expect(fits.status).toBe(201);
    const history = await ctx.api.allMessages(a, conv);
    expect(history).toHaveLength(1);
    expect((await ctx.api.send(a, conv, id, "small")).status).toBe(201);
  });

  it("over the conversation socket: too_large error frames with the ref, socket stays open, nothing stored", async () => {
    const a = await ctx.api.register("wsbig");
    const conv = await ctx.api.group(a, [], "wsbig");
    const ws = await ctx.api.convSocket(a, conv);
    const id = cmid("wsover");
    ws.send({ type: "send", client_message_id: id, kind: "text", content: "x".repeat(100_001) });
    const err = await ws.waitFor((f) => f.type === "error", 5_000, "error");
    expect(err).toMatchObject({ type: "error", code: "too_large", message: expect.any(String), ref: id });
    const from = ws.frames.length;
    const huge = cmid("wshuge");
    ws.send({ type: "send", client_message_id: huge, kind: "text", content: "y".repeat(300_000) });
    const err2 = await ws.waitFor((f) => f.type === "error", 10_000, "error for oversized frame", from);
    expect(err2.code).toBe("too_large");
    expect([huge, null]).toContain(err2.ref);
    await ws.roundTrip();
    expect(ws.isOpen).toBe(true);
    expect(await ctx.api.allMessages(a, conv)).toEqual([]);
    await ws.close();
  });
});

describe("the conversation list", () => {
  it("most recent activity first, with last_message, unread_count and last_read_seq; paginated", async () => {
    const [me, peer] = await Promise.all([ctx.api.register("lme"), ctx.api.register("lpeer")]);
    const g1 = await ctx.api.group(me, [peer], "first");
    await sleep(5);
    const g2 = await ctx.api.group(peer, [me], "second");
    await sleep(5);
    const d = await ctx.api.direct(me, peer);
    await sleep(5);

    const m1 = await ctx.api.sendOk(peer, g1, cmid("l1"), "to g1");
    await sleep(5);
    const m2 = await ctx.api.sendOk(me, d, cmid("l2"), "to d from me");
    await sleep(5);
    await ctx.api.sendOk(peer, g2, cmid("l3"), "to g2 (1)");
    await sleep(5);
    const m4 = await ctx.api.sendOk(peer, g2, cmid("l4"), "to g2 (2)");

    const expectedOrder = [g2, d, g1];
    const list = await eventually(async () => {
      const res = await ctx.api.get("/conversations", me.token);
      expect(res.status).toBe(200);
      const cs = res.json.conversations as any[];
      const ids = cs.map((c) => c.conversation_id);
      const g2Row = cs.find((c) => c.conversation_id === g2);
      return JSON.stringify(ids) === JSON.stringify(expectedOrder) && g2Row?.last_message?.seq === 2 ? res.json : undefined;
    }, 2_500, "conversation list in activity order");
    expect(list.next_cursor ?? null).toBeNull();
    const [r2, rd, r1] = list.conversations;
    expect(r2).toMatchObject({ conversation_id: g2, type: "group", name: "second", unread_count: 2, last_read_seq: 0, last_message: m4 });
    expect(r2.members.map((m: any) => m.user_id).sort()).toEqual([me.user_id, peer.user_id].sort());
    expect(rd).toMatchObject({ conversation_id: d, type: "direct", unread_count: 0, last_read_seq: 0, last_message: m2 });
    expect(r1).toMatchObject({ conversation_id: g1, type: "group", name: "first", unread_count: 1, last_read_seq: 0, last_message: m1 });

    // the peer sees the same conversations, with their own unread counts
    const peerList = await eventually(async () => {
      const res = await ctx.api.get("/conversations", peer.token);
      const rows = res.json.conversations as any[];
      return rows.length === 3 && rows[1]?.conversation_id === d ? rows : undefined;
    }, 2_500, "peer's list");
    expect(peerList.find((c) => c.conversation_id === d).unread_count).toBe(1);
    expect(peerList.find((c) => c.conversation_id === g2).unread_count).toBe(0);

    // reading: unread counts others' messages above the marker
    expect((await ctx.api.post(`/conversations/${g2}/read`, me.token, { up_to_seq: 1 })).status).toBe(204);
    await eventually(async () => {
      const res = await ctx.api.get("/conversations", me.token);
      const row = res.json.conversations.find((c: any) => c.conversation_id === g2);
      return row.last_read_seq === 1 && row.unread_count === 1 ? true : undefined;
    }, 2_500, "unread_count 1 after reading seq 1");
    // my own message does not count as unread, even above my marker
    await ctx.api.sendOk(me, g2, cmid("mine"));
    await eventually(async () => {
      const res = await ctx.api.get("/conversations", me.token);
      const row = res.json.conversations.find((c: any) => c.conversation_id === g2);
      return row.last_message?.seq === 3 && row.unread_count === 1 ? true : undefined;
    }, 2_500, "own message not unread");

    // activity moves a conversation to the top
    const top = await ctx.api.sendOk(peer, g1, cmid("bump"), "bump g1");
    const bumped = await eventually(async () => {
      const res = await ctx.api.get("/conversations", me.token);
      return res.json.conversations[0]?.conversation_id === g1 ? res.json.conversations : undefined;
    }, 2_500, "g1 on top");
    expect(bumped.map((c: any) => c.conversation_id)).toEqual([g1, g2, d]);
    expect(bumped[0].last_message).toEqual(top);
    expect(bumped[0].unread_count).toBe(2);

    // pagination with limit and next_cursor
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 5; i++) {
      const res: any = await ctx.api.get(`/conversations?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, me.token);
      expect(res.status).toBe(200);
      expect(res.json.conversations.length).toBeLessThanOrEqual(1);
      seen.push(...res.json.conversations.map((c: any) => c.conversation_id));
      cursor = res.json.next_cursor ?? null;
      if (!cursor) break;
    }
    expect(seen).toEqual([g1, g2, d]);
    const two = await ctx.api.get("/conversations?limit=2", me.token);
    expect(two.json.conversations.map((c: any) => c.conversation_id)).toEqual([g1, g2]);
    expect(typeof two.json.next_cursor).toBe("string");
    const rest = await ctx.api.get(`/conversations?limit=2&cursor=${encodeURIComponent(two.json.next_cursor)}`, me.token);
    expect(rest.json.conversations.map((c: any) => c.conversation_id)).toEqual([d]);
    expect(rest.json.next_cursor ?? null).toBeNull();
  });

  it("bad limits and cursors are 400", async () => {
    const me = await ctx.api.register("lbad");
    for (const q of ["?limit=0", "?limit=201", "?limit=x", "?cursor=%%%not-a-cursor"]) {
      const res = await ctx.api.get(`/conversations${q}`, me.token);
      expectError(res, 400, "invalid_request");
    }
    const empty = await ctx.api.get("/conversations", me.token);
    expect(empty.status).toBe(200);
    expect(empty.json).toEqual({ conversations: [], next_cursor: null });
  });
});

describe("rate limit", () => {
  /** Tokens the bucket can have refilled in `ms` at 100 a minute, plus one for rounding. */
  const refill = (ms: number) => Math.ceil((ms / 60_000) * 100) + 1;

  it("over 100 sends a minute per user: 429 rate_limited with retry-after, and the refused sends are not stored", async () => {
    const a = await ctx.api.register("rl");
    const conv = await ctx.api.group(a, [], "rate");
    const results: { status: number; headers: Headers; json: any; id: string }[] = [];
    const started = Date.now();
    // ten at a time until refused (the bucket refills while we send, so how many pass depends on speed)
    for (let batch = 0; batch < 20; batch++) {
      const ids = Array.from({ length: 10 }, (_, i) => cmid(`rl${batch}-${i}`));
      const rs = await Promise.all(ids.map((id) => ctx.api.send(a, conv, id, "x")));
      rs.forEach((r, i) => results.push({ ...r, id: ids[i]! }));
      if (results.length >= 110 && results.some((r) => r.status === 429)) break;
    }
    const elapsed = Date.now() - started;
    const limited = results.filter((r) => r.status === 429);
    const created = results.filter((r) => r.status === 201);
    expect(created.length + limited.length).toBe(results.length);
    // a full bucket: the first 100 all pass
    expect(results.slice(0, 100).every((r) => r.status === 201)).toBe(true);
    expect(limited.length, "no send was rate limited").toBeGreaterThanOrEqual(1);
    expect(created.length).toBeLessThanOrEqual(100 + refill(elapsed));
    const one = limited[0]!;
    expect(one.json).toMatchObject({ error: { code: "rate_limited", message: expect.any(String) } });
    expect(Number(one.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const history = await ctx.api.allMessages(a, conv);
    expect(history).toHaveLength(created.length);
    const stored = new Set(history.map((m) => m.client_message_id));
    for (const r of limited) expect(stored.has(r.id)).toBe(false);
    // a repeat of a stored message is not a new send: it answers the original even with the bucket empty
    const original = created[0]!;
    const repeat = await ctx.api.send(a, conv, original.id, "x");
    expect(repeat.status).toBe(200);
    expect(repeat.json).toEqual(original.json);
  });

  it("over the conversation socket: `rate_limited` error frames naming the refused client_message_id; the socket stays open", async () => {
    const a = await ctx.api.register("rlws");
    const conv = await ctx.api.group(a, [], "rate ws");
    const ws = await ctx.api.convSocket(a, conv);
    await ws.roundTrip();
    const ids = Array.from({ length: 150 }, (_, i) => `rlws-${i}`);
    const started = Date.now();
    for (const id of ids) ws.send({ type: "send", client_message_id: id, kind: "text", content: id });
    const answers = await ws.waitForCount((f) => f.type === "sent" || f.type === "error", ids.length, 60_000, "answers");
    const elapsed = Date.now() - started;
    const errors = answers.filter((f) => f.type === "error");
    const sent = answers.filter((f) => f.type === "sent");
    expect(errors.length, "no send was rate limited").toBeGreaterThanOrEqual(1);
    expect(sent.length).toBeGreaterThanOrEqual(100);
    expect(sent.length).toBeLessThanOrEqual(100 + refill(elapsed));
    for (const e of errors) {
      expect(e).toMatchObject({ type: "error", code: "rate_limited", message: expect.any(String) });
      expect(ids).toContain(e.ref);
    }
    expect(new Set([...errors.map((e) => e.ref), ...sent.map((f) => f.client_message_id)]).size).toBe(ids.length);
    await ws.roundTrip();
    expect(ws.isOpen).toBe(true);
    const history = await ctx.api.allMessages(a, conv);
    expect(history.map((m) => m.client_message_id).sort()).toEqual(sent.map((f) => f.client_message_id).sort());
    // a repeat of a stored message answers `sent` with the original, bucket or no bucket
    const from = ws.frames.length;
    ws.send({ type: "send", client_message_id: sent[0].client_message_id, kind: "text", content: "again" });
    const repeat = await ws.waitFor((f) => f.type === "sent" || f.type === "error", 5_000, "repeat answer", from);
    expect(repeat).toEqual(sent[0]);
    await ws.close();
  });
});
