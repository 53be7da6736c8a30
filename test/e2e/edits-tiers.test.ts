/**
 * Sections 13 and 14 against the real local server, started with HOT_MESSAGES=40 and
 * segments of 25: the SDK's edit/delete/react and `updated` events (live, and replayed by
 * a client restored from storage), and 300 messages paging identically across the tier
 * boundary before and after a crash (SIGKILL) and restart, with changes to archived
 * messages, and a deleted one's content gone from every R2 object on disk.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatClient, MemoryStorage, type ChatMessage } from "../../client/dist/index.js";
import { Api, PASSWORD, eventually, uniqueHandle, type Session } from "./client";
import { TestServer } from "./server";

let server: TestServer;
let api: Api;

beforeAll(async () => {
  server = await TestServer.start({
    args: ["--var", "HOT_MESSAGES:40", "--var", "HISTORY_SEGMENT_MESSAGES:25", "--var", "SEND_RATE_PER_MINUTE:100000"],
  });
  api = new Api(server.baseUrl);
});
afterAll(async () => {
  await server?.dispose();
});

const FAST = { backoff: { baseMs: 50, capMs: 1_000, resetAfterMs: 2_000 }, pingIntervalMs: 3_000, pongTimeoutMs: 3_000, connectTimeoutMs: 3_000 };
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Every file under the server's state directory. */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** The decompressed text of every gzip file in the state directory: the R2 history segments. */
function gzippedBlobs(): string[] {
  return files(server.persistDir)
    .map((path) => readFileSync(path))
    .filter((bytes) => bytes[0] === 0x1f && bytes[1] === 0x8b)
    .map((bytes) => gunzipSync(bytes).toString("utf8"));
}

async function page(s: Session, id: string, query: string): Promise<any> {
  const res = await api.get(`/conversations/${id}/messages?${query}`, s.token);
  expect(res.status).toBe(200);
  return res.json;
}

async function pagings(s: Session, id: string) {
  const forward: any[] = [];
  for (let after = 0; ; ) {
    const p = await page(s, id, `after_seq=${after}&limit=9`);
    forward.push(...p.messages);
    if (p.next_after_seq === null) break;
    after = p.next_after_seq;
  }
  const backward: any[] = [];
  for (let p = (await page(s, id, "limit=11")).messages; p.length; p = (await page(s, id, `before_seq=${p[0].seq}&limit=11`)).messages) {
    backward.unshift(...p);
  }
  return { forward, backward, straddle: (await page(s, id, "after_seq=230&limit=40")).messages };
}

describe("SDK: edits, deletes and reactions", () => {
  it("editMessage, react and deleteMessage reach another client as `updated`, and a restored client replays what it missed", async () => {
    const storage = new MemoryStorage();
    const a = await ChatClient.register({ baseUrl: server.baseUrl, handle: uniqueHandle("sa"), password: PASSWORD, ...FAST });
    const b = await ChatClient.register({ baseUrl: server.baseUrl, handle: uniqueHandle("sb"), password: PASSWORD, storage, ...FAST });
    const id = (await a.createGroup("edits", [b.userId], { encrypted: false })).conversation_id;
    const updates: ChatMessage[] = [];
    b.on("updated", (m) => updates.push(m));
    await Promise.all([a.connect(), b.connect()]);

    const sent = await a.sendText(id, "first draft");
    const edited = await a.editMessage(id, sent.seq, "second draft");
    expect(edited).toMatchObject({ seq: sent.seq, text: "second draft", content: "second draft" });
    expect(edited.edited_at).toBeGreaterThan(0);
    await b.react(id, sent.seq, "👍");
    await eventually(() => (updates.length >= 2 ? true : undefined), 10_000, "two updates at b");
    expect(updates[0]).toMatchObject({ seq: sent.seq, text: "second draft" });
    expect(updates.at(-1)!.reactions).toEqual({ "👍": [b.userId] });
    expect((await b.history(id, { limit: 1 }))[0]).toMatchObject({ text: "second draft", reactions: { "👍": [b.userId] } });

    // b goes away; what happens meanwhile is replayed to the next client on its storage, once
    await b.close();
    await a.deleteMessage(id, sent.seq);
    const b2 = (await ChatClient.restore({ baseUrl: server.baseUrl, storage, ...FAST }))!;
    const replayed: ChatMessage[] = [];
    b2.on("updated", (m) => replayed.push(m));
    await b2.connect();
    await eventually(() => (replayed.some((m) => m.deleted) ? true : undefined), 10_000, "the delete at b2");
    expect(replayed).toHaveLength(1);
    expect(replayed[0]).toMatchObject({ seq: sent.seq, deleted: true, content: "" });
    expect(replayed[0]!.text).toBeUndefined();
    const list = await b2.listConversations();
    expect(list.conversations.find((c) => c.conversation_id === id)!.last_message).toMatchObject({ seq: sent.seq, deleted: true, content: "" });
    await Promise.all([a.close(), b2.close()]);
  });
});

describe("history tiers across a restart", () => {
  it("300 messages with HOT_MESSAGES=40 page identically before and after the move and after a SIGKILL restart; archived messages change and erase", async () => {
    const [a, b] = await Promise.all([api.register("ta"), api.register("tb")]);
    const id = await api.group(a, [b], "tiers");
    for (let n = 1; n <= 300; n++) await api.sendOk(n % 3 ? a : b, id, `t${n}`, `tiered message ${n}.`);
    const before = await pagings(a, id);
    expect(before.forward.map((m: any) => m.seq)).toEqual(range(1, 300));
    expect(before.backward).toEqual(before.forward);

    // The alarm moves 1-250 into ten segments of 25 (251-300 stay: at least 40).
    await eventually(() => (gzippedBlobs().filter((t) => t.includes(`"conversation_id":"${id}"`)).length === 10 ? true : undefined), 30_000, "ten segments");
    expect(await pagings(a, id)).toEqual(before);

    await server.restart("SIGKILL");
    expect(await pagings(a, id)).toEqual(before);
    expect(await pagings(b, id)).toEqual(before);

    // resend of an archived message: the original
    const resend = await api.send(a, id, "t1", "again");
    expect(resend.status).toBe(200);
    expect(resend.json).toEqual(before.forward[0]);

    // changes to archived messages, seen on b's device socket and in history
    const device = await api.sync(b, "0");
    await device.waitForCount((f) => f.type === "message" && f.message.conversation_id === id, 300, 20_000, "b's log");
    const edit = await api.call("PATCH", `/conversations/${id}/messages/10`, { token: a.token, body: { content: "ten, edited" } });
    expect(edit.status).toBe(200);
    expect((await api.call("PUT", `/conversations/${id}/messages/10/reaction`, { token: b.token, body: { reaction: "🎉" } })).status).toBe(204);
    // message 11 is a's; b is no admin, a (the group's creator) deletes it
    expect((await api.del(`/conversations/${id}/messages/11`, b.token)).status).toBe(403);
    expect((await api.del(`/conversations/${id}/messages/11`, a.token)).status).toBe(204);
    await device.waitForCount((f) => f.type === "message_updated", 3, 10_000, "three updates");
    const changed = (await page(a, id, "after_seq=9&limit=3")).messages;
    expect(changed[0]).toMatchObject({ seq: 10, content: "ten, edited", reactions: { "🎉": [b.user_id] } });
    expect(changed[1]).toMatchObject({ seq: 11, content: "", deleted: true });
    expect(changed[2]).toEqual(before.forward[11]);
    await device.close();

    // message 11's words are in no R2 object any more; its neighbours' still are
    await eventually(() => {
      const blobs = gzippedBlobs().join("\n");
      return !blobs.includes('"tiered message 11."') && blobs.includes('"tiered message 12."') ? true : undefined;
    }, 10_000, "the segment rewritten");

    // and all of it again after another restart
    const after = await pagings(a, id);
    await server.restart("SIGTERM");
    expect(await pagings(a, id)).toEqual(after);
  }, 240_000);
});
