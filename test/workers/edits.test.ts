/**
 * Edits, deletes and reactions (CONTRACT.md section 13): who may, the shapes, delivery to
 * conversation and device sockets (live, and replayed after `since`), history and the
 * conversation list as messages now are, and a deleted message's content gone from storage.
 */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { direct, eventually, expectError, history, list, user, type User } from "./api-helpers";
import { BASE, call, group, openSocket, send } from "./helpers";

const conversationStub = (id: string) => env.CONVERSATION.get(env.CONVERSATION.idFromName(id));
const inboxStub = (userId: string) => env.INBOX.get(env.INBOX.idFromName(userId));

const edit = (s: User, id: string, seq: number | string, content: unknown) =>
  call("PATCH", `/conversations/${id}/messages/${seq}`, { token: s.token, body: { content } });
const remove = (s: User, id: string, seq: number | string) => call("DELETE", `/conversations/${id}/messages/${seq}`, { token: s.token });
const react = (s: User, id: string, seq: number, reaction: unknown) =>
  call("PUT", `/conversations/${id}/messages/${seq}/reaction`, { token: s.token, body: { reaction } });
const unreact = (s: User, id: string, seq: number) => call("DELETE", `/conversations/${id}/messages/${seq}/reaction`, { token: s.token });

async function messageAt(s: User, id: string, seq: number) {
  const res = await history(s, id, `after_seq=${seq - 1}&limit=1`);
  expect(res.status).toBe(200);
  return res.json.messages[0];
}

/** Three members: a (group admin), b and c; `seq` 1 is b's, 2 is a's. */
async function setup() {
  const [a, b, c] = await Promise.all([user("ea"), user("eb"), user("ec")]);
  // History shared (section 17), so that a member added later sees the messages before them.
  const created = await call("POST", "/conversations", { token: a.token, body: { type: "group", name: "g", members: [b.user_id, c.user_id], history: "shared" } });
  const id = created.json.conversation_id as string;
  const first = (await send(b, id, "b-1", "from b")).json;
  const second = (await send(a, id, "a-1", "from a")).json;
  return { a, b, c, id, first, second };
}

/** A completed media of the conversation (section 9), for media messages. */
async function uploaded(s: { token: string }, conversationId: string): Promise<string> {
  const res = await exports.default.fetch(
    new Request(`${BASE}/conversations/${conversationId}/media`, {
      method: "POST",
      headers: { authorization: `Bearer ${s.token}`, "content-type": "image/png" },
      body: new Uint8Array([137, 80, 78, 71, 1, 2, 3]),
    }),
  );
  expect(res.status).toBe(201);
  return ((await res.json()) as { media_id: string }).media_id;
}

/** Every piece of text an object holds in SQLite, to look for erased content in. */
async function everything(stub: DurableObjectStub, tables: string[]): Promise<string> {
  return runInDurableObject(stub, (_, state) =>
    tables.map((t) => JSON.stringify(state.storage.sql.exec(`SELECT * FROM ${t}`).toArray())).join("\n"),
  );
}

describe("PATCH /v1/conversations/:id/messages/:seq (edit)", () => {
  it("the sender edits within the window: 200 with edited_at; history, list and both kinds of socket see it", async () => {
    const { a, b, c, id, first } = await setup();
    const convSocket = (await openSocket(`/conversations/${id}/ws`, c.token)).socket!;
    const deviceC = (await openSocket(`/sync?since=0`, c.token)).socket!;
    const deviceB = (await openSocket(`/sync?since=0`, b.token)).socket!;
    await deviceC.waitFor((f) => f.type === "message" && f.message.seq === 2);

    const before = Date.now();
    const res = await edit(b, id, 1, "from b, edited");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ ...first, content: "from b, edited" });
    expect(res.json.edited_at).toBeGreaterThanOrEqual(before);
    expect(res.json.deleted).toBeUndefined();

    const live = await convSocket.waitFor((f) => f.type === "message_updated");
    expect(live).toEqual({ type: "message_updated", message: res.json });
    for (const device of [deviceB, deviceC]) {
      const event = await device.waitFor((f) => f.type === "message_updated");
      expect(Object.keys(event).sort()).toEqual(["cursor", "message", "type"]);
      expect(typeof event.cursor).toBe("string");
      expect(event.message).toEqual(res.json);
    }
    expect(await messageAt(a, id, 1)).toEqual(res.json);
    // seq 2 is the last message: the list is unchanged by an edit of seq 1
    const entry = (await list(c)).json.conversations.find((x: any) => x.conversation_id === id);
    expect(entry.last_message.seq).toBe(2);
  });

  it("an edit of the last message shows in the conversation list", async () => {
    const { a, c, id } = await setup();
    expect((await edit(a, id, 2, "from a, edited")).status).toBe(200);
    await eventually(async () => {
      const entry = (await list(c)).json.conversations.find((x: any) => x.conversation_id === id);
      expect(entry.last_message).toMatchObject({ seq: 2, content: "from a, edited" });
      expect(entry.unread_count).toBe(2);
    });
  });

  it("refuses anyone but the sender (an admin too), unknown seqs, bad bodies, long content and media", async () => {
    const { a, c, id } = await setup();
    expectError(await edit(a, id, 1, "not mine"), 403, "forbidden");
    expectError(await edit(c, id, 1, "not mine"), 403, "forbidden");
    expectError(await edit(a, id, 3, "x"), 404, "not_found");
    expectError(await edit(a, id, 0, "x"), 404, "not_found");
    expectError(await edit(a, id, "two", "x"), 400, "invalid_request");
    expectError(await edit(a, id, 2, 42), 400, "invalid_request");
    expectError(await call("PATCH", `/conversations/${id}/messages/2`, { token: a.token, body: {} }), 400, "invalid_request");
    expectError(await edit(a, id, 2, "x".repeat(100_001)), 413, "too_large");
    const outsider = await user("eo");
    expectError(await edit(outsider, id, 2, "x"), 403, "forbidden");
    expectError(await call("PATCH", `/conversations/${id}/messages/2`, { body: { content: "x" } }), 401, "unauthorized");
    const media = await call("POST", `/conversations/${id}/messages`, {
      token: a.token,
      body: { client_message_id: "media-1", kind: "media", content: "", media_id: await uploaded(a, id) },
    });
    expect(media.status).toBe(201);
    expectError(await edit(a, id, media.json.seq, "caption"), 403, "forbidden");
    // nothing changed
    expect((await messageAt(c, id, 1)).content).toBe("from b");
    expect((await messageAt(c, id, 2)).edited_at).toBeUndefined();
  });

  it("refuses an edit once EDIT_WINDOW_SECONDS (900) have passed since sending", async () => {
    const { b, id } = await setup();
    await runInDurableObject(conversationStub(id), (_, state) => {
      state.storage.sql.exec("UPDATE messages SET created_at = created_at - 901000 WHERE seq = 1");
    });
    const res = await edit(b, id, 1, "too late");
    expectError(res, 403, "forbidden");
    expect(res.json.error.message).toMatch(/900/);
  });
});

describe("DELETE /v1/conversations/:id/messages/:seq", () => {
  it("the sender deletes: 204; the message stays as deleted with empty content, everywhere", async () => {
    const { a, b, c, id, first } = await setup();
    const deviceC = (await openSocket(`/sync?since=0`, c.token)).socket!;
    await deviceC.waitFor((f) => f.type === "message" && f.message.seq === 2);
    const cursorBefore = deviceC.frames.filter((f) => f.cursor).at(-1).cursor;
    const convSocket = (await openSocket(`/conversations/${id}/ws`, a.token)).socket!;

    const res = await remove(b, id, 1);
    expect(res.status).toBe(204);
    const expected = { ...first, content: "", deleted: true };
    expect(await messageAt(a, id, 1)).toEqual(expected);
    expect((await convSocket.waitFor((f) => f.type === "message_updated")).message).toEqual(expected);
    expect((await deviceC.waitFor((f) => f.type === "message_updated")).message).toEqual(expected);

    // replayed after `since`: the update once, and the original event no longer carries the content
    const again = (await openSocket(`/sync?since=0`, c.token)).socket!;
    await again.waitFor((f) => f.type === "message_updated");
    expect(JSON.stringify(again.frames)).not.toContain("from b");
    const after = (await openSocket(`/sync?since=${cursorBefore}`, c.token)).socket!;
    await after.waitFor((f) => f.type === "message_updated");
    expect(after.frames.filter((f) => f.type !== "pong")).toEqual([{ type: "message_updated", cursor: expect.any(String), message: expected }]);

    // a repeat is a no-op; edits and reactions of a deleted message are refused
    expect((await remove(b, id, 1)).status).toBe(204);
    expectError(await edit(b, id, 1, "back"), 409, "conflict");
    expectError(await react(a, id, 1, "👍"), 409, "conflict");

    // erased from the conversation's storage and from every member's inbox
    await eventually(async () => {
      // (the log's events are JSON inside the row's JSON, hence the optional backslash)
      for (const u of [a, b, c]) expect(await everything(inboxStub(u.user_id), ["log", "conversations"])).toMatch(/deleted\\?":true/);
    });
    expect(await everything(conversationStub(id), ["messages", "feed", "archived_changes"])).not.toContain("from b");
    for (const u of [a, b, c]) expect(await everything(inboxStub(u.user_id), ["log", "conversations", "push_outbox"])).not.toContain("from b");
  }, 30_000);

  it("a group admin deletes anyone's message; other members cannot; a deleted last message shows as deleted in the list", async () => {
    const { a, b, c, id, second } = await setup();
    expectError(await remove(c, id, 1), 403, "forbidden");
    expectError(await remove(b, id, 2), 403, "forbidden");
    expectError(await remove(a, id, 9), 404, "not_found");
    expect((await remove(a, id, 1)).status).toBe(204);
    expect((await messageAt(c, id, 1)).deleted).toBe(true);
    expect((await remove(a, id, 2)).status).toBe(204);
    await eventually(async () => {
      for (const u of [a, b, c]) {
        const entry = (await list(u)).json.conversations.find((x: any) => x.conversation_id === id);
        expect(entry.last_message).toEqual({ ...second, content: "", deleted: true });
      }
    });
  });

  it("in a direct conversation only the sender deletes", async () => {
    const [a, b] = await Promise.all([user("da"), user("db")]);
    const id = (await direct(a, b)).json.conversation_id;
    await send(a, id, "d-1", "direct");
    expectError(await remove(b, id, 1), 403, "forbidden");
    expect((await remove(a, id, 1)).status).toBe(204);
  });

  it("a deleted media message loses its media_id", async () => {
    const { a, id } = await setup();
    const media = await call("POST", `/conversations/${id}/messages`, {
      token: a.token,
      body: { client_message_id: "media-2", kind: "media", content: "a caption", media_id: await uploaded(a, id) },
    });
    expect((await remove(a, id, media.json.seq)).status).toBe(204);
    const now = await messageAt(a, id, media.json.seq);
    expect(now).toEqual({ ...media.json, content: "", deleted: true, media_id: undefined });
    expect("media_id" in now).toBe(false);
  });
});

describe("PUT/DELETE /v1/conversations/:id/messages/:seq/reaction", () => {
  it("one reaction per user, replaced and removed; absent when none", async () => {
    const { a, b, c, id } = await setup();
    const convSocket = (await openSocket(`/conversations/${id}/ws`, c.token)).socket!;
    expect((await react(a, id, 1, "👍")).status).toBe(204);
    expect((await react(b, id, 1, "👍")).status).toBe(204);
    expect((await messageAt(c, id, 1)).reactions).toEqual({ "👍": [a.user_id, b.user_id] });
    expect((await react(a, id, 1, "❤️")).status).toBe(204);
    expect((await messageAt(c, id, 1)).reactions).toEqual({ "👍": [b.user_id], "❤️": [a.user_id] });
    // the same again changes nothing and sends nothing
    expect((await react(a, id, 1, "❤️")).status).toBe(204);
    expect((await unreact(b, id, 1)).status).toBe(204);
    expect((await messageAt(c, id, 1)).reactions).toEqual({ "❤️": [a.user_id] });
    expect((await unreact(a, id, 1)).status).toBe(204);
    expect((await unreact(a, id, 1)).status).toBe(204);
    const now = await messageAt(c, id, 1);
    expect("reactions" in now).toBe(false);
    expect(now.edited_at).toBeUndefined();

    await convSocket.waitFor((f) => f.type === "message_updated" && f.message.reactions === undefined);
    const updates = convSocket.frames.filter((f) => f.type === "message_updated").map((f) => f.message.reactions ?? null);
    expect(updates).toEqual([
      { "👍": [a.user_id] },
      { "👍": [a.user_id, b.user_id] },
      { "👍": [b.user_id], "❤️": [a.user_id] },
      { "❤️": [a.user_id] },
      null,
    ]);
  });

  it("refuses empty, over-64-character and ill-typed reactions, and non-members", async () => {
    const { a, id } = await setup();
    expectError(await react(a, id, 1, ""), 400, "invalid_request");
    expectError(await react(a, id, 1, "x".repeat(65)), 400, "invalid_request");
    expectError(await react(a, id, 1, null), 400, "invalid_request");
    expect((await react(a, id, 1, "x".repeat(64))).status).toBe(204);
    expectError(await react(await user("eo"), id, 1, "👍"), 403, "forbidden");
    expectError(await react(a, id, 5, "👍"), 404, "not_found");
  });
});

describe("edit, delete and react frames on the conversation socket", () => {
  it("act like the HTTP calls; refusals come back as error frames with the frame's client_message_id as ref", async () => {
    const { a, b, c, id } = await setup();
    const sa = (await openSocket(`/conversations/${id}/ws`, a.token)).socket!;
    const sc = (await openSocket(`/conversations/${id}/ws`, c.token)).socket!;
    sa.send({ type: "edit", seq: 2, content: "edited on the socket" });
    expect((await sc.waitFor((f) => f.type === "message_updated")).message).toMatchObject({ seq: 2, content: "edited on the socket" });
    sc.send({ type: "react", seq: 2, reaction: "🎉" });
    await sa.waitFor((f) => f.type === "message_updated" && f.message.reactions?.["🎉"]);
    sc.send({ type: "react", seq: 2, reaction: null });
    await sa.waitFor((f) => f.type === "message_updated" && f.message.seq === 2 && !f.message.reactions && f.message.content === "edited on the socket" && sa.frames.filter((x) => x.type === "message_updated").length === 3);
    sa.send({ type: "delete", seq: 1 });
    expect((await sc.waitFor((f) => f.type === "message_updated" && f.message.seq === 1)).message).toMatchObject({ deleted: true, content: "" });

    sc.send({ type: "edit", seq: 2, content: "not mine", client_message_id: "try-1" });
    expect(await sc.waitFor((f) => f.type === "error")).toMatchObject({ type: "error", code: "forbidden", ref: "try-1" });
    sc.send({ type: "delete", seq: 99 });
    expect(await sc.waitFor((f) => f.type === "error" && f.code === "not_found")).toMatchObject({ ref: null });
    sc.send({ type: "react", seq: 2, reaction: "y".repeat(65), client_message_id: "try-2" });
    expect(await sc.waitFor((f) => f.type === "error" && f.ref === "try-2")).toMatchObject({ code: "invalid_request" });
    sc.send({ type: "edit", seq: -1, content: "x" });
    await sc.waitFor((f) => f.type === "error" && f.code === "invalid_request" && f.ref === null);
    expect((await messageAt(b, id, 2)).content).toBe("edited on the socket");
  });
});

describe("replay after reconnect", () => {
  it("a device that reconnects with its cursor gets every change it missed, once, in order", async () => {
    const { a, b, c, id } = await setup();
    const device = (await openSocket(`/sync?since=0`, c.token)).socket!;
    await device.waitFor((f) => f.type === "message" && f.message.seq === 2);
    const cursor = device.frames.filter((f) => f.cursor).at(-1).cursor;
    device.ws.close(1000);

    expect((await edit(b, id, 1, "v2")).status).toBe(200);
    expect((await react(a, id, 1, "👍")).status).toBe(204);
    expect((await remove(a, id, 2)).status).toBe(204);
    await eventually(async () => {
      const n = await runInDurableObject(inboxStub(c.user_id), (_, state) =>
        state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM log WHERE type = 'message_updated'").one().n,
      );
      expect(n).toBe(3);
    });

    const back = (await openSocket(`/sync?since=${cursor}`, c.token)).socket!;
    await back.waitFor((f) => f.type === "message_updated" && f.message.seq === 2);
    const updates = back.frames.filter((f) => f.type === "message_updated");
    // One event per change; each carries the message as it was when the inbox got it, so the
    // last one of each seq is what the message now is.
    expect(updates.map((f) => f.message.seq)).toEqual([1, 1, 2]);
    expect(updates[1].message).toMatchObject({ content: "v2", reactions: { "👍": [a.user_id] } });
    expect(updates[2].message).toMatchObject({ content: "", deleted: true });
    const cursors = updates.map((f) => Number(f.cursor));
    expect(cursors).toEqual([...cursors].sort((x, y) => x - y));
    expect(new Set(cursors).size).toBe(3);
    // and nothing twice after the last one
    const last = (await openSocket(`/sync?since=${updates.at(-1).cursor}`, c.token)).socket!;
    last.send({ type: "ping" });
    await last.waitFor((f) => f.type === "pong");
    expect(last.frames.filter((f) => f.type !== "pong")).toEqual([]);
  });
});

describe("abuse", () => {
  it("changes take tokens from the user's send bucket (SEND_RATE_PER_MINUTE): past it, 429 with retry-after and nothing changes", async () => {
    const { a, id } = await setup();
    let limited: Awaited<ReturnType<typeof react>> | null = null;
    for (let i = 0; i < 120 && !limited; i++) {
      const res = await react(a, id, 1, i % 2 ? "👍" : "❤️");
      if (res.status === 429) limited = res;
      else expect(res.status).toBe(204);
    }
    expect(limited).not.toBeNull();
    expectError(limited!, 429, "rate_limited");
    expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThan(0);
    // refusals and no-ops cost nothing, and are answered as before
    expectError(await edit(a, id, 1, "not mine"), 403, "forbidden");
  }, 60_000);

  it("a deleted message's content also leaves the `joined` events that carried it as the latest message", async () => {
    const { a, b, id } = await setup();
    const d = await user("ed");
    expect((await call("POST", `/conversations/${id}/members`, { token: a.token, body: { user_ids: [d.user_id] } })).status).toBe(200);
    await eventually(async () => {
      const entry = (await list(d)).json.conversations.find((x: any) => x.conversation_id === id);
      expect(entry.last_message).toMatchObject({ seq: 2, content: "from a" });
    });
    expect(await everything(conversationStub(id), ["feed"])).toContain("from a");
    expect((await remove(a, id, 2)).status).toBe(204);
    expect(await everything(conversationStub(id), ["messages", "feed"])).not.toContain("from a");
    await eventually(async () => {
      const entry = (await list(d)).json.conversations.find((x: any) => x.conversation_id === id);
      expect(entry.last_message).toMatchObject({ seq: 2, content: "", deleted: true });
    });
    for (const u of [a, b, d]) expect(await everything(inboxStub(u.user_id), ["log", "conversations"])).not.toContain("from a");
  });
});
