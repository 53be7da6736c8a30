/**
 * Durability across restarts (CONTRACT.md sections 5 and 6): an acknowledged message
 * survives a graceful stop (SIGTERM) and a crash (SIGKILL of the whole process group),
 * the device log resumes by cursor without loss or repeats, and seq continues.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { closeAll, cmid, eventually, type Session, type Socket } from "./client";
import { useServer } from "./setup";

const ctx = useServer();

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Opens a device socket with `since` and waits until it holds `n` message events of `conv`. */
async function replayFrom(s: Session, since: string, conv: string, n: number, timeoutMs: number): Promise<Socket> {
  const ws = await ctx.api.sync(s, since);
  await ws.waitForCount((f) => f.type === "message" && f.message.conversation_id === conv, n, timeoutMs, "replayed messages");
  await ws.roundTrip();
  return ws;
}

describe("restart", () => {
  let a: Session;
  let b: Session;
  let conv: string;
  /** Everything acked so far, in seq order. */
  const acked: any[] = [];
  /** b's device-socket position after the last event it saw, and the last seq of `conv` seen there. */
  let bCursor: string;
  let bSeenSeq = 0;

  beforeAll(async () => {
    [a, b] = await Promise.all([ctx.api.register("ra"), ctx.api.register("rb")]);
    conv = await ctx.api.group(a, [b], "durable");
  });

  it("after SIGTERM and a restart on the same state: history, logins, tokens, cursors, seq and idempotency all hold", async () => {
    const syncB = await ctx.api.sync(b);
    await syncB.roundTrip();
    for (let i = 1; i <= 3; i++) acked.push(await ctx.api.sendOk(a, conv, cmid(`pre${i}`), `before restart ${i}`));
    await syncB.waitForCount((f) => f.type === "message" && f.message.conversation_id === conv, 3, 5_000, "first three");
    bCursor = syncB.frames.filter((f) => f.cursor !== undefined).at(-1).cursor;
    await syncB.close();

    // sent while b's device is away, just before the stop
    acked.push(await ctx.api.sendOk(a, conv, cmid("pre4"), "missed 4"));
    acked.push(await ctx.api.sendOk(b, conv, cmid("pre5"), "missed 5 (b's own)"));

    const convWs = await ctx.api.convSocket(a, conv);
    await convWs.roundTrip();
    await ctx.server.restart("SIGTERM");
    // sockets of the old process are gone
    await convWs.waitClose(10_000);

    // history is intact
    const history = await ctx.api.allMessages(a, conv);
    expect(history).toEqual(acked);

    // tokens issued before the restart still work, and so does logging in
    expect((await ctx.api.get("/me", a.token)).status).toBe(200);
    const relogin = await ctx.api.login(b, "after-restart");
    expect((await ctx.api.get("/me", relogin.token)).json.user_id).toBe(b.user_id);

    // an idempotent resend of a pre-restart client_message_id answers the original
    const resend = await ctx.api.send(a, conv, acked[1].client_message_id, "whatever");
    expect(resend.status).toBe(200);
    expect(resend.json).toEqual(acked[1]);

    // seq continues without a gap
    acked.push(await ctx.api.sendOk(a, conv, cmid("post6"), "after restart 6"));
    acked.push(await ctx.api.sendOk(b, conv, cmid("post7"), "after restart 7"));
    expect(acked.map((m) => m.seq)).toEqual(range(1, 7));

    // b's device resumes from its cursor: what it missed around the restart, once, in order
    const again = await replayFrom(b, bCursor, conv, 4, 10_000);
    const replayed = again.frames.filter((f) => f.type === "message").map((f) => f.message);
    expect(replayed).toEqual(acked.slice(3));
    bCursor = again.frames.filter((f) => f.cursor !== undefined).at(-1).cursor;
    // and streams again
    acked.push(await ctx.api.sendOk(a, conv, cmid("post8"), "live 8"));
    await again.waitFor((f) => f.type === "message" && f.message.seq === 8, 5_000, "live message 8");
    await again.roundTrip();
    expect(again.frames.filter((f) => f.type === "message").map((f) => f.message.seq)).toEqual([4, 5, 6, 7, 8]);
    bCursor = again.frames.filter((f) => f.cursor !== undefined).at(-1).cursor;
    bSeenSeq = 8;
    await again.close();

    // the conversation list survived too
    await eventually(async () => {
      const res = await ctx.api.get("/conversations", b.token);
      const row = res.json.conversations.find((c: any) => c.conversation_id === conv);
      return row?.last_message?.seq === 8 ? row : undefined;
    }, 3_000, "list with last message 8");
  });

  it("after SIGKILL right after the acks: every acked message survives and reaches the device log exactly once", async () => {
    const before = acked.length;
    // a concurrent burst, all acked, then an immediate crash of the whole process group
    const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => ctx.api.sendOk(i % 2 ? a : b, conv, cmid(`burst${i}`), `burst ${i}`)));
    burst.sort((x, y) => x.seq - y.seq);
    acked.push(...burst);
    expect(acked.map((m) => m.seq)).toEqual(range(1, before + 12));
    await ctx.server.restart("SIGKILL");

    // First, before anything touches the conversation again: b's device log holds every acked
    // message once, even if the crash cut the fan-out short (the object's persisted alarm must
    // finish it without further traffic).
    const again = await replayFrom(b, bCursor, conv, 12, 20_000);
    const replayed = again.frames.filter((f) => f.type === "message").map((f) => f.message);
    expect(replayed).toEqual(burst);
    bCursor = again.frames.filter((f) => f.cursor !== undefined).at(-1).cursor;
    bSeenSeq = burst.at(-1).seq;
    await again.close();

    const history = await ctx.api.allMessages(a, conv);
    expect(history).toEqual(acked);
    for (const m of burst.slice(0, 3)) {
      const r = await ctx.api.send(m.sender_id === a.user_id ? a : b, conv, m.client_message_id, "again");
      expect(r.status).toBe(200);
      expect(r.json).toEqual(m);
    }

    acked.push(await ctx.api.sendOk(a, conv, cmid("after-kill"), "after kill"));
    expect(acked.at(-1).seq).toBe(before + 13);
  });

  it("SIGKILL with sends in flight: acked ones survive, seq stays gapless, resends settle each client_message_id once", async () => {
    const start = acked.length;
    const ids = Array.from({ length: 40 }, (_, i) => cmid(`flight${i}`));
    const results: ({ status: number; json: any } | null)[] = new Array(ids.length).fill(null);
    let done = 0;
    const inFlight = ids.map((id, i) =>
      ctx.api
        .send(i % 2 ? a : b, conv, id, `flight ${i}`)
        .then((r) => {
          results[i] = r;
          done++;
        })
        .catch(() => {
          // the server died under it: unknown outcome
        }),
    );
    await eventually(() => (done >= 10 ? true : undefined), 30_000, "ten acks");
    const killing = ctx.server.restart("SIGKILL");
    await Promise.all(inFlight);
    await killing;

    const ackedNow = results.filter((r): r is { status: number; json: any } => r !== null && r.status === 201).map((r) => r.json);
    expect(ackedNow.length).toBeGreaterThanOrEqual(10);
    const history = await ctx.api.allMessages(a, conv);
    expect(history.map((m) => m.seq)).toEqual(range(1, history.length));
    expect(history.slice(0, start)).toEqual(acked);
    const bySeq = new Map(history.map((m) => [m.seq, m]));
    for (const m of ackedNow) expect(bySeq.get(m.seq)).toEqual(m);

    // resending everything: acked ones answer their original; the rest are stored now, once
    for (const [i, id] of ids.entries()) {
      const r = await ctx.api.send(i % 2 ? a : b, conv, id, `flight ${i}`);
      const prior = results[i];
      if (prior && prior.status === 201) {
        expect(r.status).toBe(200);
        expect(r.json).toEqual(prior.json);
      } else {
        expect([200, 201]).toContain(r.status);
      }
    }
    const final = await ctx.api.allMessages(a, conv);
    expect(final.map((m) => m.seq)).toEqual(range(1, final.length));
    expect(final.length).toBe(start + ids.length);
    const cmids = final.map((m) => `${m.sender_id}/${m.client_message_id}`);
    expect(new Set(cmids).size).toBe(cmids.length);

    // and b's device log holds every one of them once
    const again = await replayFrom(b, bCursor, conv, final.length - bSeenSeq, 20_000);
    const replayed = again.frames.filter((f) => f.type === "message").map((f) => f.message.seq);
    expect(replayed).toEqual(range(bSeenSeq + 1, final.length));
    await closeAll([again]);
  });
});
