/**
 * History-tier figures (run by bench/tiers.config.ts, not by the workers project): the
 * conversation object's SQLite size after N messages with and without tiering, and history
 * page latency from the hot tier and from R2 segments. Messages are written straight into
 * the object's store (the send path is the bench's business) and marked delivered, so the
 * figure is what a conversation of that size holds at rest.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { Conversation } from "../../objects/conversation";
import type { ConversationStore } from "../../objects/conversation-store";
import type { HistoryTiers } from "../../objects/history-tiers";
import { history, user, type User } from "./api-helpers";
import { group } from "./helpers";

const N = Number((env as unknown as Record<string, string>).TIERS_MESSAGES ?? "100000");
const stub = (id: string) => env.CONVERSATION.get(env.CONVERSATION.idFromName(id));
type Inside = { store: ConversationStore; tiers: HistoryTiers; ctx: DurableObjectState };

async function fill(id: string, a: User, b: User, n: number) {
  const BATCH = 2_000;
  for (let from = 1; from <= n; from += BATCH) {
    await runInDurableObject<Conversation, void>(stub(id), (instance, state) => {
      const { store } = instance as unknown as Inside;
      state.storage.transactionSync(() => {
        for (let i = from; i < Math.min(n + 1, from + BATCH); i++) {
          const s = i % 2 ? a : b;
          store.appendMessage({
            message_id: `m_bench${i}`,
            sender_id: s.user_id,
            sender_device_id: s.device_id,
            client_message_id: `c${i}`,
            kind: "text",
            // a typical short chat message, with some variety
            content: `message ${i}: ${"lorem ipsum dolor sit amet ".slice(0, 10 + (i % 17))}`,
            created_at: Date.now(),
          });
        }
        // as if every inbox had confirmed it (fan-out is measured by the bench, not here)
        const last = store.lastFeedId();
        store.confirmFedAll(new Map(store.activeMembers().map((m) => [m.user_id, last])));
      });
    });
  }
}

const size = (id: string) => runInDurableObject(stub(id), (_, state) => state.storage.sql.databaseSize);

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

it(`figures for ${N} messages`, async () => {
  const [a, b] = await Promise.all([user("fa"), user("fb")]);
  const tiered = await group(a, [b], "tiered");
  const flat = await group(a, [b], "flat");
  // "Without tiering": nothing is ever due with a hot tier larger than the conversation.
  await runInDurableObject<Conversation, void>(stub(flat), (instance) => {
    Object.assign((instance as unknown as Inside).tiers.settings, { hot: N + 1 });
  });

  const fillStart = performance.now();
  await fill(tiered, a, b, N);
  await fill(flat, a, b, N);
  const fillMs = performance.now() - fillStart;

  const moveStart = performance.now();
  for (;;) {
    const more = await runInDurableObject<Conversation, boolean>(stub(tiered), async (instance) =>
      (instance as unknown as Inside).tiers.archiveOne(),
    );
    if (!more) break;
  }
  const moveMs = performance.now() - moveStart;
  await runDurableObjectAlarm(stub(tiered));

  const segments = await runInDurableObject(stub(tiered), (_, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM segments").one().n);
  const listed = await env.MEDIA.list({ prefix: `history/${tiered}/` });
  const r2Bytes = listed.objects.reduce((t, o) => t + o.size, 0);

  const runs = 15;
  const page = (id: string, q: string) => async () => expect((await history(a, id, q)).status).toBe(200);
  // Straight to the object (no Worker, auth or D1): the tiers' own cost.
  const rpc = (id: string, q: { after?: number; limit: number }) => async () =>
    expect((await stub(id).history({ userId: a.user_id, deviceId: a.device_id }, q)).ok).toBe(true);
  const lat = {
    hotTiered: [] as number[],
    hotFlat: [] as number[],
    oldFlat: [] as number[],
    coldSegment: [] as number[],
    warmSegment: [] as number[],
    rpcHot: [] as number[],
    rpcColdSegment: [] as number[],
    rpcWarmSegment: [] as number[],
  };
  const segmentCount = Math.max(1, segments);
  for (let i = 0; i < runs; i++) {
    lat.hotTiered.push(await timed(page(tiered, "limit=50")));
    lat.hotFlat.push(await timed(page(flat, "limit=50")));
    lat.oldFlat.push(await timed(page(flat, `after_seq=${(i * 997) % (N / 2)}&limit=50`)));
    // a segment not read before (the cache holds 8): fetched from R2 and decompressed
    lat.coldSegment.push(await timed(page(tiered, `after_seq=${((i * 7) % segmentCount) * 1000 + 100}&limit=50`)));
    lat.warmSegment.push(await timed(page(tiered, `after_seq=${((i * 7) % segmentCount) * 1000 + 300}&limit=50`)));
  }
  for (let i = 0; i < runs; i++) {
    lat.rpcHot.push(await timed(rpc(tiered, { limit: 50 })));
    lat.rpcColdSegment.push(await timed(rpc(tiered, { after: ((i * 11 + 3) % segmentCount) * 1000 + 500, limit: 50 })));
    lat.rpcWarmSegment.push(await timed(rpc(tiered, { after: ((i * 11 + 3) % segmentCount) * 1000 + 700, limit: 50 })));
  }
  const figures = {
    messages: N,
    segments,
    r2_bytes: r2Bytes,
    sqlite_bytes_tiered: await size(tiered),
    sqlite_bytes_flat: await size(flat),
    fill_ms_both: Math.round(fillMs),
    move_ms: Math.round(moveMs),
    page_ms_median: Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, Number(median(v).toFixed(2))])),
  };
  console.log(`TIERS FIGURES ${JSON.stringify(figures, null, 2)}`);
});
