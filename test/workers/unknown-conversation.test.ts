/**
 * Issue 11, finding 6: a well-formed conversation id that names nothing must not create an
 * object that writes storage. The Worker asks D1 before it wakes an object, and an object
 * without a conversation writes nothing even when it is reached.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Conversation } from "../../objects/conversation";
import { expectError, fakeConversationId, rawFetch, user } from "./api-helpers";
import { call, group } from "./helpers";

const stub = (id: string) => env.CONVERSATION.get(env.CONVERSATION.idFromName(id));

/** The tables in the object's SQLite (the constructor runs, as it would for any request). */
const tables = (id: string) =>
  runInDurableObject(stub(id), (_, state) =>
    state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf%' ESCAPE '\\'")
      .toArray()
      .map((r) => r.name),
  );

describe("unknown conversation ids", () => {
  it("answer 404 on every route without leaving storage behind", async () => {
    const a = await user("uc");
    const id = fakeConversationId();
    const calls: [string, string, unknown?][] = [
      ["GET", `/conversations/${id}`],
      ["GET", `/conversations/${id}/messages`],
      ["POST", `/conversations/${id}/messages`, { client_message_id: "x", kind: "text", content: "hi" }],
      ["POST", `/conversations/${id}/read`, { up_to_seq: 0 }],
      ["POST", `/conversations/${id}/delivered`, { up_to_seq: 0 }],
      ["POST", `/conversations/${id}/members`, { user_ids: [a.user_id] }],
      ["DELETE", `/conversations/${id}/members/${a.user_id}`],
    ];
    for (const [method, path, body] of calls) expectError(await call(method, path, { token: a.token, body }), 404, "not_found");
    const ws = await rawFetch(`/conversations/${id}/ws?token=${a.token}`, { headers: { upgrade: "websocket" } });
    expect(ws.status).toBe(404);
    expect(await tables(id)).toEqual([]);
  });

  it("leave an object that is reached anyway without storage", async () => {
    const a = await user("uc");
    const id = fakeConversationId("c");
    await runInDurableObject<Conversation, void>(stub(id), async (instance) => {
      const caller = { userId: a.user_id, deviceId: a.device_id };
      expect((await instance.describe(caller)).ok).toBe(false);
      expect((await instance.history(caller, { limit: 10 })).ok).toBe(false);
      await instance.revokeDevice(a.device_id);
      expect(await instance.presenceChanged(a.user_id, { status: "online", last_seen: null })).toBe(false);
      await instance.alarm();
    });
    expect(await tables(id)).toEqual([]);
  });

  it("are told apart from conversations the caller is not in (403), still without waking them", async () => {
    const [a, b, outsider] = await Promise.all([user("uc"), user("uc"), user("uc")]);
    const id = await group(a, [b]);
    expectError(await call("GET", `/conversations/${id}`, { token: outsider.token }), 403, "forbidden");
    expectError(await call("GET", `/conversations/${id}/messages`, { token: outsider.token }), 403, "forbidden");
    const ws = await rawFetch(`/conversations/${id}/ws?token=${outsider.token}`, { headers: { upgrade: "websocket" } });
    expect(ws.status).toBe(403);
    expect((await call("GET", `/conversations/${id}`, { token: b.token })).status).toBe(200);
  });
});
