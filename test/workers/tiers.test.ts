/**
 * History tiers (CONTRACT.md section 14): with HOT_MESSAGES=40 (and 25 messages a segment),
 * 300 messages page identically across the boundary before and after the move to R2 and
 * after the objects restart; resends, edits, deletes and reactions work on archived messages,
 * and a delete erases the content from the R2 segment.
 *
 * The workers project binds one set of [vars] for every test file, so this file sets the
 * conversation's tier settings on its live instance (what HOT_MESSAGES and
 * HISTORY_SEGMENT_MESSAGES would); after a restart the defaults apply again, which moves
 * nothing more but reads everything already moved.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Conversation } from "../../objects/conversation";
import type { HistoryTiers } from "../../objects/history-tiers";
import { eventually, history, list, user, type User } from "./api-helpers";
import { call, group, openSocket, send } from "./helpers";

const conversationStub = (id: string) => env.CONVERSATION.get(env.CONVERSATION.idFromName(id));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function setTiers(id: string, hot: number, segment: number) {
  await runInDurableObject<Conversation, void>(conversationStub(id), (instance) => {
    const tiers = (instance as unknown as { tiers: HistoryTiers }).tiers;
    Object.assign(tiers.settings, { hot, segment });
  });
}

const sqlCount = (id: string, query: string) =>
  runInDurableObject(conversationStub(id), (_, state) => state.storage.sql.exec<{ n: number }>(query).one().n);

/** Runs the conversation's alarm until its hot tier holds `hot` messages at most beyond the last full segment. */
async function moveUntil(id: string, segments: number) {
  await eventually(async () => {
    await runDurableObjectAlarm(conversationStub(id));
    expect(await sqlCount(id, "SELECT count(*) AS n FROM segments")).toBe(segments);
  }, 30_000);
}

async function gunzip(bytes: ArrayBuffer): Promise<string> {
  return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
}

/** Every way of paging through the conversation, each flattened to the message list it yields. */
async function allPagings(s: User, id: string) {
  const forward: any[] = [];
  for (let after = 0; ; ) {
    const page = (await history(s, id, `after_seq=${after}&limit=7`)).json;
    forward.push(...page.messages);
    if (page.next_after_seq === null) break;
    after = page.next_after_seq;
  }
  const backward: any[] = [];
  let newest = (await history(s, id, "limit=13")).json.messages;
  const newestPage = newest;
  while (newest.length) {
    backward.unshift(...newest);
    newest = (await history(s, id, `before_seq=${newest[0].seq}&limit=13`)).json.messages;
  }
  const around = (await history(s, id, "before_seq=262&limit=30")).json.messages;
  const straddle = (await history(s, id, "after_seq=240&limit=20")).json.messages;
  const big = (await history(s, id, "after_seq=0&limit=200")).json.messages;
  return { forward, backward, newestPage, around, straddle, big };
}

describe("history tiers", () => {
  it("300 messages with HOT_MESSAGES=40 page identically across the boundary, before and after a restart", async () => {
    const members = await Promise.all([user("ta"), user("tb"), user("tc"), user("td")]);
    const [a] = members;
    const id = await group(a!, members.slice(1));
    await setTiers(id, 40, 25);
    // 4 senders of 75 each stay within the per-user send rate
    await Promise.all(
      members.map(async (s, i) => {
        for (let n = 0; n < 75; n++) expect((await send(s, id, `s${i}-${n}`, `message ${i}/${n}`)).status).toBe(201);
      }),
    );
    const before = await allPagings(a!, id);
    expect(before.forward.map((m) => m.seq)).toEqual(range(1, 300));
    expect(before.backward).toEqual(before.forward);

    // 250 in ten segments; 251-300 stay (at least 40, fewer than 40 + 25)
    await setTiers(id, 40, 25);
    await moveUntil(id, 10);
    expect(await sqlCount(id, "SELECT count(*) AS n FROM messages")).toBe(50);
    expect(await sqlCount(id, "SELECT min(seq) AS n FROM messages")).toBe(251);
    const listed = await env.MEDIA.list({ prefix: `history/${id}/` });
    expect(listed.objects.map((o) => o.key).sort()).toEqual(range(0, 9).map((k) => `history/${id}/${k * 25 + 1}-${k * 25 + 25}.json.gz`).sort());
    const segment = JSON.parse(await gunzip(await (await env.MEDIA.get(`history/${id}/1-25.json.gz`))!.arrayBuffer()));
    expect(segment).toEqual(before.forward.slice(0, 25));

    expect(await allPagings(a!, id)).toEqual(before);
    await abortAllDurableObjects();
    expect(await allPagings(a!, id)).toEqual(before);

    // a resend of an archived client_message_id answers the original, stored once
    const resend = await send(members[1]!, id, "s1-0", "again");
    expect(resend.status).toBe(200);
    expect(resend.json).toEqual(before.forward.find((m) => m.client_message_id === "s1-0" && m.sender_id === members[1]!.user_id));
    expect((await history(a!, id, "limit=1")).json.messages[0].seq).toBe(300);
    // and the list is as it was
    const entry = (await list(a!)).json.conversations.find((x: any) => x.conversation_id === id);
    expect(entry.last_message).toEqual(before.forward[299]);
  }, 120_000);

  it("edits, reactions and deletes of archived messages: live, in history, on the device socket, and erased from R2", async () => {
    const [a, b] = await Promise.all([user("te"), user("tf")]);
    const id = await group(a, [b]);
    await setTiers(id, 40, 25);
    for (let n = 1; n <= 70; n++) expect((await send(n % 2 ? a : b, id, `m${n}`, `secret number ${n}`)).status).toBe(201);
    await moveUntil(id, 1);
    expect(await sqlCount(id, "SELECT count(*) AS n FROM messages")).toBe(45);

    const device = (await openSocket(`/sync?since=0`, b.token)).socket!;
    await device.waitFor((f) => f.type === "message" && f.message.seq === 70);
    const conv = (await openSocket(`/conversations/${id}/ws`, b.token)).socket!;

    const edited = await call("PATCH", `/conversations/${id}/messages/3`, { token: a.token, body: { content: "three, edited" } });
    expect(edited.status).toBe(200);
    expect(edited.json).toMatchObject({ seq: 3, content: "three, edited", client_message_id: "m3" });
    expect((await conv.waitFor((f) => f.type === "message_updated")).message).toEqual(edited.json);
    expect((await device.waitFor((f) => f.type === "message_updated")).message).toEqual(edited.json);
    expect((await call("PUT", `/conversations/${id}/messages/3/reaction`, { token: b.token, body: { reaction: "👍" } })).status).toBe(204);
    expect((await call("DELETE", `/conversations/${id}/messages/5`, { token: a.token })).status).toBe(204);
    await device.waitFor((f) => f.type === "message_updated" && f.message.seq === 5);

    const page = (await history(b, id, "after_seq=0&limit=6")).json.messages;
    expect(page[2]).toEqual({ ...edited.json, reactions: { "👍": [b.user_id] } });
    expect(page[4]).toMatchObject({ seq: 5, content: "", deleted: true });
    expect(page[3]).toMatchObject({ seq: 4, content: "secret number 4" });

    // the segment itself no longer holds what message 5 said
    const stored = await gunzip(await (await env.MEDIA.get(`history/${id}/1-25.json.gz`))!.arrayBuffer());
    expect(stored).not.toContain('"secret number 5"');
    expect(stored).toContain('"secret number 4"');
    expect(await sqlCount(id, "SELECT count(*) AS n FROM segment_scrubs")).toBe(0);

    // the same after a restart; an edit window still applies to archived messages; resend after delete
    await abortAllDurableObjects();
    expect((await history(b, id, "after_seq=0&limit=6")).json.messages).toEqual(page);
    const resend = await send(a, id, "m5", "again");
    expect(resend.status).toBe(200);
    expect(resend.json).toMatchObject({ seq: 5, deleted: true, content: "" });
    expect((await call("PATCH", `/conversations/${id}/messages/2`, { token: a.token, body: { content: "not mine" } })).status).toBe(403);
    expect((await call("DELETE", `/conversations/${id}/messages/2`, { token: a.token })).status).toBe(204);
    const second = await gunzip(await (await env.MEDIA.get(`history/${id}/1-25.json.gz`))!.arrayBuffer());
    expect(second).not.toContain('"secret number 2"');
    expect(second).not.toContain('"secret number 5"');
  }, 120_000);

  it("a segment ends early once its content passes 2,000,000 characters, so no move or read holds more", async () => {
    const [a, b] = await Promise.all([user("ti"), user("tj")]);
    const id = await group(a, [b]);
    await setTiers(id, 1, 25);
    const big = (n: number) => `${n}:`.padEnd(100_000, "x");
    for (let n = 1; n <= 26; n++) expect((await send(a, id, `big${n}`, big(n))).status).toBe(201);
    // 1-25 are due; the segment stops at 20 (20 × 100,000), and the next one (21-45) is not due yet
    await moveUntil(id, 1);
    const keys = (await env.MEDIA.list({ prefix: `history/${id}/` })).objects.map((o) => o.key).sort();
    expect(keys).toEqual([`history/${id}/1-20.json.gz`]);
    expect(await sqlCount(id, "SELECT min(seq) AS n FROM messages")).toBe(21);
    const all = (await history(b, id, "after_seq=0&limit=26")).json.messages;
    expect(all.map((m: any) => m.content)).toEqual(Array.from({ length: 26 }, (_, i) => big(i + 1)));
  }, 120_000);

  it("a segment written by an attempt that crashed before indexing it loses a deleted message's content too", async () => {
    const [a, b] = await Promise.all([user("tg"), user("th")]);
    const id = await group(a, [b]);
    for (let n = 1; n <= 5; n++) expect((await send(a, id, `k${n}`, `kept ${n}`)).status).toBe(201);
    const key = `history/${id}/1-5.json.gz`;
    // What a move of 1-5 leaves when the object dies after writing the segment, before indexing it.
    await runInDurableObject<Conversation, void>(conversationStub(id), async (instance, state) => {
      const tiers = instance as unknown as { tiers: HistoryTiers; store: { hotRange(lo: number, hi: number): unknown[] } };
      state.storage.sql.exec("INSERT INTO segment_attempts (first_seq, last_seq, key) VALUES (1, 5, ?)", key);
      const gz = new Blob([JSON.stringify(tiers.store.hotRange(1, 5))]).stream().pipeThrough(new CompressionStream("gzip"));
      await env.MEDIA.put(key, await new Response(gz).arrayBuffer());
    });
    expect(await env.MEDIA.head(key)).not.toBeNull();
    expect((await call("DELETE", `/conversations/${id}/messages/3`, { token: a.token })).status).toBe(204);
    expect(await env.MEDIA.head(key)).toBeNull();
    expect(await sqlCount(id, "SELECT count(*) AS n FROM segment_attempts")).toBe(0);
    // the move, when it comes, writes the segment from the rows as they are then
    await setTiers(id, 0, 5);
    await moveUntil(id, 1);
    const stored = await gunzip(await (await env.MEDIA.get(key))!.arrayBuffer());
    expect(stored).not.toContain('"kept 3"');
    expect(JSON.parse(stored)[2]).toMatchObject({ seq: 3, deleted: true, content: "" });
  });
});
