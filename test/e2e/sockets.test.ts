/** The conversation socket and the device socket (CONTRACT.md sections 1 and 6) against the real server. */
import { beforeAll, describe, expect, it } from "vitest";
import { Socket, closeAll, cmid, sleep, type Session } from "./client";
import { useServer } from "./setup";

const ctx = useServer();

const isMessage = (conv: string) => (f: any) => f.type === "message" && f.message?.conversation_id === conv;

describe("the conversation socket", () => {
  let a: Session;
  let b: Session;
  let outsider: Session;
  let conv: string;
  beforeAll(async () => {
    [a, b, outsider] = await Promise.all([ctx.api.register("wa"), ctx.api.register("wb"), ctx.api.register("wout")]);
    conv = await ctx.api.group(a, [b], "sockets");
  });

  it("send: the sender gets `sent`, every socket on the conversation (the sender's too) gets `message`", async () => {
    const wsA = await ctx.api.convSocket(a, conv);
    const wsB = await ctx.api.convSocket(b, conv);
    const a2 = await ctx.api.login(a, "second");
    const wsA2 = await ctx.api.convSocket(a2, conv);
    await Promise.all([wsA, wsB, wsA2].map((s) => s.roundTrip()));

    const id = cmid("hello");
    wsA.send({ type: "send", client_message_id: id, kind: "text", content: "hello over ws" });
    const sent = await wsA.waitFor((f) => f.type === "sent", 5_000, "sent");
    expect(sent).toEqual({
      type: "sent",
      client_message_id: id,
      message: {
        message_id: expect.any(String),
        conversation_id: conv,
        seq: expect.any(Number),
        sender_id: a.user_id,
        sender_device_id: a.device_id,
        client_message_id: id,
        kind: "text",
        content: "hello over ws",
        created_at: expect.any(Number),
      },
    });
    for (const ws of [wsA, wsB, wsA2]) {
      const m = await ws.waitFor(isMessage(conv), 5_000, "message");
      expect(m).toEqual({ type: "message", message: sent.message });
    }
    // only the sender got `sent`
    await Promise.all([wsB.roundTrip(), wsA2.roundTrip()]);
    expect(wsB.ofType("sent")).toEqual([]);
    expect(wsA2.ofType("sent")).toEqual([]);

    // an HTTP send is broadcast to the sockets as well
    const viaHttp = await ctx.api.sendOk(b, conv, cmid("http"), "over http");
    for (const ws of [wsA, wsB, wsA2]) {
      await ws.waitFor((f) => f.type === "message" && f.message.message_id === viaHttp.message_id, 5_000, "http message");
    }
    const history = await ctx.api.allMessages(a, conv);
    expect(history.slice(-2)).toEqual([sent.message, viaHttp]);
    await closeAll([wsA, wsB, wsA2]);
  });

  it("typing: `start` is relayed to the others only; explicit `stop` is relayed; nothing is stored", async () => {
    const wsA = await ctx.api.convSocket(a, conv);
    const wsB = await ctx.api.convSocket(b, conv);
    const syncB = await ctx.api.sync(b);
    await Promise.all([wsA, wsB, syncB].map((s) => s.roundTrip()));
    const before = (await ctx.api.allMessages(a, conv)).length;

    wsA.send({ type: "typing", state: "start" });
    const start = await wsB.waitFor((f) => f.type === "typing", 5_000, "typing start");
    expect(start).toMatchObject({ type: "typing", user_id: a.user_id, state: "start" });
    wsA.send({ type: "typing", state: "stop" });
    const stop = await wsB.waitFor((f) => f.type === "typing" && f.state === "stop", 5_000, "typing stop");
    expect(stop).toMatchObject({ type: "typing", user_id: a.user_id, state: "stop" });

    await Promise.all([wsA.roundTrip(), syncB.roundTrip()]);
    expect(wsA.ofType("typing")).toEqual([]);
    expect(syncB.ofType("typing")).toEqual([]);
    expect((await ctx.api.allMessages(a, conv)).length).toBe(before);

    // a typist whose socket closes stops typing for the others
    wsA.send({ type: "typing", state: "start" });
    await wsB.waitFor((f) => f.type === "typing" && f.state === "start", 5_000, "second start", wsB.frames.indexOf(stop) + 1);
    const from = wsB.frames.length;
    await wsA.close();
    const closedStop = await wsB.waitFor((f) => f.type === "typing", 5_000, "stop on close", from);
    expect(closedStop).toMatchObject({ type: "typing", user_id: a.user_id, state: "stop" });
    await closeAll([wsB, syncB]);
  });

  it("a typing `start` not renewed ends by itself after about 6 s; a renewed one lasts 6 s from the renewal", async () => {
    const c = await ctx.api.register("wc");
    const conv2 = await ctx.api.group(a, [b, c], "typing");
    const wsA = await ctx.api.convSocket(a, conv2);
    const wsB = await ctx.api.convSocket(b, conv2);
    const wsC = await ctx.api.convSocket(c, conv2);
    await Promise.all([wsA, wsB, wsC].map((s) => s.roundTrip()));

    const fromA = (state: string) => (f: any) => f.type === "typing" && f.user_id === a.user_id && f.state === state;
    const fromC = (state: string) => (f: any) => f.type === "typing" && f.user_id === c.user_id && f.state === state;

    wsA.send({ type: "typing", state: "start" });
    wsC.send({ type: "typing", state: "start" });
    await wsB.waitFor(fromA("start"), 5_000, "A start");
    await wsB.waitFor(fromC("start"), 5_000, "C start");
    const t0 = Date.now();

    // C renews after 3 s; A does not
    await sleep(3_000);
    wsC.send({ type: "typing", state: "start" });
    const renewedAt = Date.now();

    await wsB.waitFor(fromA("stop"), 10_000, "A's automatic stop");
    const aStopped = Date.now() - t0;
    expect(aStopped).toBeGreaterThanOrEqual(5_000);
    expect(aStopped).toBeLessThanOrEqual(9_000);
    // C was renewed: no stop for C yet
    expect(wsB.frames.some(fromC("stop"))).toBe(false);

    await wsB.waitFor(fromC("stop"), 10_000, "C's automatic stop");
    const cStopped = Date.now() - renewedAt;
    expect(cStopped).toBeGreaterThanOrEqual(5_000);
    expect(cStopped).toBeLessThanOrEqual(9_000);
    // each stop once, and the typist's own socket never hears about itself
    expect(wsB.frames.filter(fromA("stop"))).toHaveLength(1);
    expect(wsB.frames.filter(fromC("stop"))).toHaveLength(1);
    expect(wsA.frames.filter(fromA("start"))).toHaveLength(0);
    expect(wsC.frames.filter(fromC("stop"))).toHaveLength(0);
    await closeAll([wsA, wsB, wsC]);
  }, 30_000);

  it('{"type":"ping"} answers {"type":"pong"}, however it is spaced', async () => {
    const ws = await ctx.api.convSocket(a, conv);
    ws.send('{"type":"ping"}');
    expect(await ws.waitFor((f) => f.type === "pong", 5_000, "pong")).toEqual({ type: "pong" });
    const from = ws.frames.length;
    ws.send('{ "type" : "ping" }');
    expect(await ws.waitFor((f) => f.type === "pong", 5_000, "pong", from)).toEqual({ type: "pong" });
    await ws.close();
  });

  it("bad frames get an error frame with ref (client_message_id or null) and the socket stays open", async () => {
    const ws = await ctx.api.convSocket(a, conv);
    await ws.roundTrip();
    const before = (await ctx.api.allMessages(a, conv)).length;

    const errorAfter = async (frame: string | Uint8Array) => {
      const from = ws.frames.length;
      if (typeof frame === "string") ws.send(frame);
      else ws.sendBinary(frame);
      return ws.waitFor((f) => f.type === "error", 5_000, "error frame", from);
    };

    const notJson = await errorAfter("this is not json {");
    expect(notJson).toEqual({ type: "error", code: "invalid_request", message: expect.any(String), ref: null });

    const unknownWithId = await errorAfter(JSON.stringify({ type: "shout", client_message_id: "ref-123" }));
    expect(unknownWithId).toEqual({ type: "error", code: "invalid_request", message: expect.any(String), ref: "ref-123" });

    const unknownType = await errorAfter(JSON.stringify({ type: "dance" }));
    expect(unknownType).toMatchObject({ code: "invalid_request", ref: null });

    const noType = await errorAfter(JSON.stringify({ hello: "world" }));
    expect(noType).toMatchObject({ code: "invalid_request", ref: null });

    const badSend = await errorAfter(JSON.stringify({ type: "send", client_message_id: "ref-456", kind: "nope", content: "x" }));
    expect(badSend).toMatchObject({ code: "invalid_request", ref: "ref-456" });

    const missingContent = await errorAfter(JSON.stringify({ type: "send", client_message_id: "ref-789", kind: "text" }));
    expect(missingContent).toMatchObject({ code: "invalid_request", ref: "ref-789" });

    const arrayFrame = await errorAfter("[1,2,3]");
    expect(arrayFrame).toMatchObject({ code: "invalid_request", ref: null });

    const badTyping = await errorAfter(JSON.stringify({ type: "typing", state: "maybe" }));
    expect(badTyping).toMatchObject({ code: "invalid_request" });

    const binary = await errorAfter(new Uint8Array([1, 2, 3, 4]));
    expect(binary).toMatchObject({ type: "error", code: "invalid_request", ref: null });

    // still open and working
    await ws.roundTrip();
    const id = cmid("after-errors");
    ws.send({ type: "send", client_message_id: id, kind: "text", content: "still here" });
    await ws.waitFor((f) => f.type === "sent" && f.client_message_id === id, 5_000, "sent after errors");
    expect(ws.isOpen).toBe(true);
    expect((await ctx.api.allMessages(a, conv)).length).toBe(before + 1);
    await ws.close();
  });

  it("a read marker beyond the last message over the socket does not close it", async () => {
    const ws = await ctx.api.convSocket(a, conv);
    ws.send({ type: "read", up_to_seq: 1_000_000 });
    // whatever the server thinks of it, the socket stays open
    await ws.roundTrip();
    expect(ws.isOpen).toBe(true);
    await ws.close();
  });

  it("upgrades are refused before the upgrade: non-member 403, bad or missing token 401, unknown conversation 404", async () => {
    const nonMember = await ctx.api.openSocket(`/conversations/${conv}/ws`, outsider.token);
    expect(nonMember.status).toBe(403);
    expect(nonMember.refusalJson).toMatchObject({ error: { code: "forbidden", message: expect.any(String) } });

    const badToken = await ctx.api.openSocket(`/conversations/${conv}/ws`, "garbage.token.here");
    expect(badToken.status).toBe(401);
    expect(badToken.refusalJson).toMatchObject({ error: { code: "unauthorized" } });

    const noToken = await ctx.api.openSocket(`/conversations/${conv}/ws`);
    expect(noToken.status).toBe(401);

    const unknown = await ctx.api.openSocket(`/conversations/g_${"b".repeat(26)}/ws`, a.token);
    expect(unknown.status).toBe(404);

    // identity comes from the token alone: headers naming another user are ignored
    const spoofed = await Socket.open(`${ctx.api.wsBase}/v1/conversations/${conv}/ws?token=${outsider.token}`, 15_000, {
      "x-chat-user": a.user_id,
      "x-chat-device": a.device_id,
      "x-chat-token-exp": String(Math.floor(Date.now() / 1000) + 3600),
    });
    expect(spoofed.status).toBe(403);
    const spoofedSync = await Socket.open(`${ctx.api.wsBase}/v1/sync?token=${outsider.token}&since=0`, 15_000, { "x-chat-user": a.user_id });
    expect(spoofedSync.status).toBe(101);
    await spoofedSync.roundTrip();
    expect(spoofedSync.frames.some((f) => f.type === "message" && f.message.conversation_id === conv)).toBe(false);
    await spoofedSync.close();

    // the token may also come as a bearer header, as on every other endpoint
    const byHeader = await Socket.open(`${ctx.api.wsBase}/v1/conversations/${conv}/ws`, 15_000, { authorization: `Bearer ${a.token}` });
    expect(byHeader.status).toBe(101);
    await byHeader.roundTrip();
    await byHeader.close();

    // a plain GET on a socket endpoint is not an upgrade
    const plain = await ctx.api.get(`/conversations/${conv}/ws?token=${a.token}`);
    expect(plain.status).toBeGreaterThanOrEqual(400);
    expect(plain.status).toBeLessThan(500);
  });
});

describe("the device socket", () => {
  let a1: Session;
  let a2: Session;
  let b: Session;
  let conv: string;
  beforeAll(async () => {
    a1 = await ctx.api.register("da");
    a2 = await ctx.api.login(a1, "a2");
    b = await ctx.api.register("db");
    conv = await ctx.api.group(a1, [b], "devices");
  });

  it("every message reaches every device of every member, the sending device included, each event with a cursor", async () => {
    const [s1, s2, sb] = await Promise.all([ctx.api.sync(a1), ctx.api.sync(a2), ctx.api.sync(b)]);
    await Promise.all([s1, s2, sb].map((s) => s.roundTrip()));

    const m = await ctx.api.sendOk(a1, conv, cmid("fan"), "to all devices");
    for (const s of [s1, s2, sb]) {
      const ev = await s.waitFor((f) => f.type === "message" && f.message.message_id === m.message_id, 5_000, "message event");
      expect(ev).toEqual({ type: "message", cursor: expect.any(String), message: m });
    }

    // sent from the other device, over its conversation socket
    const ws2 = await ctx.api.convSocket(a2, conv);
    const id = cmid("fromws");
    ws2.send({ type: "send", client_message_id: id, kind: "text", content: "from a2" });
    const sent = await ws2.waitFor((f) => f.type === "sent", 5_000, "sent");
    for (const s of [s1, s2, sb]) {
      const ev = await s.waitFor((f) => f.type === "message" && f.message.client_message_id === id, 5_000, "ws message event");
      expect(ev.message).toEqual(sent.message);
    }
    // nothing twice
    await Promise.all([s1, s2, sb].map((s) => s.roundTrip()));
    for (const s of [s1, s2, sb]) {
      expect(s.frames.filter((f) => f.type === "message" && f.message.message_id === m.message_id)).toHaveLength(1);
      expect(s.frames.filter((f) => f.type === "message" && f.message.client_message_id === id)).toHaveLength(1);
    }
    await closeAll([s1, s2, sb, ws2]);
  });

  it("conversations the user is added to arrive as `conversation` events", async () => {
    const sb = await ctx.api.sync(b);
    await sb.roundTrip();
    const g = await ctx.api.group(a1, [b], "announced");
    const ev = await sb.waitFor((f) => f.type === "conversation" && f.conversation.conversation_id === g, 5_000, "conversation event");
    expect(ev).toMatchObject({ type: "conversation", cursor: expect.any(String), conversation: { conversation_id: g, type: "group", name: "announced" } });
    await sb.close();
  });

  it("reconnecting with the last cursor replays exactly what was missed, then streams; nothing twice", async () => {
    const first = await ctx.api.sync(b);
    await first.roundTrip();
    const m0 = await ctx.api.sendOk(a1, conv, cmid("r0"));
    const ev0 = await first.waitFor((f) => f.type === "message" && f.message.message_id === m0.message_id, 5_000, "m0");
    const lastCursor = first.frames.filter((f) => f.cursor !== undefined).at(-1).cursor;
    expect(lastCursor).toBe(ev0.cursor);
    await first.close();

    // missed while away: messages from both others and b itself, and a receipt
    const missed: any[] = [];
    missed.push(await ctx.api.sendOk(a1, conv, cmid("r1")));
    missed.push(await ctx.api.sendOk(b, conv, cmid("r2")));
    missed.push(await ctx.api.sendOk(a2, conv, cmid("r3")));
    expect((await ctx.api.post(`/conversations/${conv}/read`, a1.token, { up_to_seq: missed[2].seq })).status).toBe(204);
    // the device log may trail the acks slightly: wait for it to hold the receipt (seen by a fresh since=lastCursor probe)
    let probe: Socket | null = null;
    for (let i = 0; i < 40; i++) {
      probe = await ctx.api.sync(b, lastCursor);
      await probe.roundTrip();
      if (probe.frames.some((f) => f.type === "receipt" && f.up_to_seq === missed[2].seq)) break;
      await probe.close();
      probe = null;
      await sleep(100);
    }
    expect(probe, "the receipt never reached the log").not.toBeNull();
    await probe!.close();

    const again = await ctx.api.sync(b, lastCursor);
    await again.roundTrip();
    const replayed = again.frames.filter((f) => f.type !== "pong");
    expect(replayed.filter((f) => f.type === "message").map((f) => f.message)).toEqual(missed);
    expect(replayed.filter((f) => f.type === "receipt")).toEqual([
      { type: "receipt", cursor: expect.any(String), conversation_id: conv, user_id: a1.user_id, kind: "read", up_to_seq: missed[2].seq },
    ]);
    expect(replayed.some((f) => f.message?.message_id === m0.message_id)).toBe(false);
    for (const f of replayed) expect(f.cursor).not.toBe(lastCursor);
    expect(new Set(replayed.map((f) => f.cursor)).size).toBe(replayed.length);

    // then new events stream, once
    const live = await ctx.api.sendOk(a1, conv, cmid("r4"));
    await again.waitFor((f) => f.type === "message" && f.message.message_id === live.message_id, 5_000, "live after replay");
    await again.roundTrip();
    const messages = again.frames.filter((f) => f.type === "message").map((f) => f.message.seq);
    expect(messages).toEqual([...missed.map((m) => m.seq), live.seq]);

    // reconnecting with the newest cursor replays nothing
    const newest = again.frames.filter((f) => f.cursor !== undefined).at(-1).cursor;
    await again.close();
    const idle = await ctx.api.sync(b, newest);
    await idle.roundTrip();
    expect(idle.frames.filter((f) => f.type !== "pong")).toEqual([]);
    await idle.close();
  });

  it("without `since` nothing is replayed; since=0 replays everything", async () => {
    const fresh = await ctx.api.sync(b);
    const m = await ctx.api.sendOk(a1, conv, cmid("nosince"));
    const ev = await fresh.waitFor((f) => f.type === "message", 5_000, "first message");
    expect(ev.message.message_id).toBe(m.message_id);
    expect(fresh.frames.filter((f) => f.cursor !== undefined)).toHaveLength(1);
    await fresh.close();

    const all = await ctx.api.sync(b, "0");
    await all.roundTrip();
    const history = await ctx.api.allMessages(b, conv);
    const replayedSeqs = all.frames.filter((f) => f.type === "message" && f.message.conversation_id === conv).map((f) => f.message.seq);
    expect(replayedSeqs).toEqual(history.map((h) => h.seq));
    expect(all.frames.some((f) => f.type === "conversation" && f.conversation.conversation_id === conv)).toBe(true);
    await all.close();
  });

  it("a bad `since` is 400 before the upgrade; a bad token is 401", async () => {
    for (const since of ["abc", "-1", "1.5", "99999999999999999999"]) {
      const ws = await ctx.api.openSocket("/sync", b.token, { since });
      expect(ws.status, `since=${since}`).toBe(400);
      expect(ws.refusalJson).toMatchObject({ error: { code: "invalid_request" } });
    }
    expect((await ctx.api.openSocket("/sync", "nope")).status).toBe(401);
    expect((await ctx.api.openSocket("/sync")).status).toBe(401);
  });

  it("bad frames on the device socket get an error frame and the socket stays open", async () => {
    const s = await ctx.api.sync(b);
    s.send("not json");
    const err = await s.waitFor((f) => f.type === "error", 5_000, "error");
    expect(err).toMatchObject({ type: "error", code: "invalid_request", ref: null });
    await s.roundTrip();
    expect(s.isOpen).toBe(true);
    await s.close();
  });

  it("reconnecting repeatedly with the last cursor while messages flow: every message exactly once", async () => {
    const TOTAL = 60;
    const received: any[] = [];
    // start from the new conversation's event, so that `since` is defined from the first reconnect on
    const first = await ctx.api.sync(b);
    await first.roundTrip();
    const g = await ctx.api.group(a1, [b], "churn");
    const created = await first.waitFor((f) => f.type === "conversation" && f.conversation.conversation_id === g, 5_000, "conversation event");
    let cursor: string = created.cursor;

    let sending = true;
    const sender = (async () => {
      for (let i = 0; i < TOTAL; i++) {
        await ctx.api.sendOk(i % 2 ? a1 : a2, g, `churn-${i}`, `n${i}`);
        if (i % 7 === 0) await sleep(15);
      }
      sending = false;
    })();

    let socket: Socket = first;
    let from = 0;
    const collect = () => {
      for (const f of socket.frames.slice(from)) {
        if (f.cursor !== undefined) cursor = f.cursor;
        if (f.type === "message" && f.message.conversation_id === g) received.push(f.message);
      }
      from = socket.frames.length;
    };
    let reconnects = 0;
    while (sending || received.length < TOTAL) {
      await sleep(80 + Math.floor(Math.random() * 60));
      collect();
      await socket.close();
      collect();
      socket = await ctx.api.sync(b, cursor);
      from = 0;
      reconnects++;
      if (!sending) {
        // let the tail arrive
        try {
          await socket.waitForCount((f) => f.type === "message" && f.message.conversation_id === g, TOTAL - received.length, 5_000, "tail");
        } catch {
          // checked below
        }
        collect();
        break;
      }
    }
    await sender;
    await socket.close();
    expect(reconnects).toBeGreaterThan(3);
    expect(received.map((m) => m.seq)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
  });
});
