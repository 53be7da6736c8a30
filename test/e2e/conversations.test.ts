/** Direct conversations, groups and membership (CONTRACT.md section 4) against the real server. */
import { beforeAll, describe, expect, it } from "vitest";
import { closeAll, cmid, eventually, type Session } from "./client";
import { useServer } from "./setup";

const ctx = useServer();

const expectError = (res: { status: number; json: any }, status: number, code: string) => {
  expect(res.status, JSON.stringify(res.json)).toBe(status);
  expect(res.json).toMatchObject({ error: { code, message: expect.any(String) } });
};

/** A well-formed conversation id that names nothing. */
const UNKNOWN_GROUP = `g_${"a".repeat(26)}`;

const fakeIds = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `u_fake_${tag}_${i}`);

describe("direct conversations", () => {
  it("201 the new conversation, then 200 the same one, whoever asks", async () => {
    const [a, b] = await Promise.all([ctx.api.register("da"), ctx.api.register("db")]);
    const first = await ctx.api.post("/conversations", a.token, { type: "direct", peer: b.user_id });
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ conversation_id: expect.any(String), type: "direct", created_at: expect.any(Number) });
    expect(first.json.members.map((m: any) => m.user_id).sort()).toEqual([a.user_id, b.user_id].sort());

    const again = await ctx.api.post("/conversations", a.token, { type: "direct", peer: b.user_id });
    expect(again.status).toBe(200);
    expect(again.json.conversation_id).toBe(first.json.conversation_id);

    const reverse = await ctx.api.post("/conversations", b.token, { type: "direct", peer: a.user_id });
    expect(reverse.status).toBe(200);
    expect(reverse.json.conversation_id).toBe(first.json.conversation_id);

    const got = await ctx.api.get(`/conversations/${first.json.conversation_id}`, b.token);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ conversation_id: first.json.conversation_id, type: "direct", created_at: first.json.created_at });
  });

  it("exactly one per pair when both users create it at the same moment (several rounds)", async () => {
    for (let round = 0; round < 5; round++) {
      const [a, b] = await Promise.all([ctx.api.register("ra"), ctx.api.register("rb")]);
      const results = await Promise.all([
        ctx.api.post("/conversations", a.token, { type: "direct", peer: b.user_id }),
        ctx.api.post("/conversations", b.token, { type: "direct", peer: a.user_id }),
        ctx.api.post("/conversations", a.token, { type: "direct", peer: b.user_id }),
        ctx.api.post("/conversations", b.token, { type: "direct", peer: a.user_id }),
      ]);
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 201), `round ${round}: ${statuses}`).toHaveLength(1);
      expect(statuses.filter((s) => s === 200), `round ${round}: ${statuses}`).toHaveLength(3);
      const ids = new Set(results.map((r) => r.json.conversation_id));
      expect(ids.size).toBe(1);

      // both see exactly one direct conversation with the other in their list
      for (const me of [a, b]) {
        const list = await eventually(async () => {
          const res = await ctx.api.get("/conversations", me.token);
          return res.json.conversations.length >= 1 ? res.json.conversations : undefined;
        }, 3_000, "direct conversation in list");
        const directs = list.filter((c: any) => c.type === "direct");
        expect(directs).toHaveLength(1);
        expect(directs[0].conversation_id).toBe([...ids][0]);
      }
    }
  });

  it("an unknown peer is 404; oneself is 400; a missing peer is 400", async () => {
    const a = await ctx.api.register("dpeer");
    expectError(await ctx.api.post("/conversations", a.token, { type: "direct", peer: "u_nosuchuser" }), 404, "not_found");
    expectError(await ctx.api.post("/conversations", a.token, { type: "direct", peer: a.user_id }), 400, "invalid_request");
    expectError(await ctx.api.post("/conversations", a.token, { type: "direct" }), 400, "invalid_request");
    expectError(await ctx.api.post("/conversations", a.token, { type: "channel", name: "x" }), 400, "invalid_request");
    expectError(await ctx.api.call("POST", "/conversations", { token: a.token, raw: "{" }), 400, "invalid_request");
  });

  it("creating a conversation needs a token", async () => {
    expectError(await ctx.api.post("/conversations", undefined, { type: "group", name: "x", members: [] }), 401, "unauthorized");
  });
});

describe("groups", () => {
  let admin: Session;
  let m1: Session;
  let m2: Session;
  let outsider: Session;
  beforeAll(async () => {
    [admin, m1, m2, outsider] = await Promise.all([ctx.api.register("gadm"), ctx.api.register("gm1"), ctx.api.register("gm2"), ctx.api.register("gout")]);
  });

  it("201; the creator is a member and admin, the others members", async () => {
    const res = await ctx.api.post("/conversations", admin.token, { type: "group", name: "Team", members: [m1.user_id, m2.user_id] });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ conversation_id: expect.any(String), type: "group", name: "Team", created_at: expect.any(Number) });
    const roles = Object.fromEntries(res.json.members.map((m: any) => [m.user_id, m.role]));
    expect(roles).toEqual({ [admin.user_id]: "admin", [m1.user_id]: "member", [m2.user_id]: "member" });

    const got = await ctx.api.get(`/conversations/${res.json.conversation_id}`, m1.token);
    expect(got.status).toBe(200);
    expect(got.json).toEqual(res.json);
  });

  it("a group of the creator alone is fine; listing the creator among members does not duplicate them", async () => {
    const alone = await ctx.api.post("/conversations", admin.token, { type: "group", name: "solo", members: [] });
    expect(alone.status).toBe(201);
    expect(alone.json.members).toEqual([{ user_id: admin.user_id, role: "admin" }]);
    const dup = await ctx.api.post("/conversations", admin.token, { type: "group", name: "dup", members: [admin.user_id, m1.user_id, m1.user_id] });
    expect(dup.status).toBe(201);
    expect(dup.json.members).toHaveLength(2);
  });

  it("257 members in all is 422 limit_exceeded, checked before the members' existence", async () => {
    const res = await ctx.api.post("/conversations", admin.token, { type: "group", name: "huge", members: fakeIds(256, "a") });
    expectError(res, 422, "limit_exceeded");
  });

  it("256 members in all passes the count check (and then the unknown ids are 404)", async () => {
    const res = await ctx.api.post("/conversations", admin.token, { type: "group", name: "full", members: fakeIds(255, "b") });
    expectError(res, 404, "not_found");
  });

  it("an unknown user among the members is 404, and nothing is created", async () => {
    const res = await ctx.api.post("/conversations", admin.token, { type: "group", name: "ghosts", members: [m1.user_id, "u_ghost"] });
    expectError(res, 404, "not_found");
  });

  it("bad group bodies are 400", async () => {
    expectError(await ctx.api.post("/conversations", admin.token, { type: "group", members: [] }), 400, "invalid_request");
    expectError(await ctx.api.post("/conversations", admin.token, { type: "group", name: "x", members: "nope" }), 400, "invalid_request");
  });

  it("non-members get 403; unknown conversations 404", async () => {
    const conv = await ctx.api.group(admin, [m1], "private");
    expectError(await ctx.api.get(`/conversations/${conv}`, outsider.token), 403, "forbidden");
    expectError(await ctx.api.get(`/conversations/${conv}/messages`, outsider.token), 403, "forbidden");
    expectError(await ctx.api.send(outsider, conv), 403, "forbidden");
    expectError(await ctx.api.post(`/conversations/${conv}/read`, outsider.token, { up_to_seq: 0 }), 403, "forbidden");
    expectError(await ctx.api.post(`/conversations/${conv}/members`, outsider.token, { user_ids: [outsider.user_id] }), 403, "forbidden");
    expectError(await ctx.api.get(`/conversations/${UNKNOWN_GROUP}`, admin.token), 404, "not_found");
    expectError(await ctx.api.get(`/conversations/${UNKNOWN_GROUP}/messages`, admin.token), 404, "not_found");
    expectError(await ctx.api.send(admin, UNKNOWN_GROUP), 404, "not_found");
    expectError(await ctx.api.get(`/conversations/not-an-id`, admin.token), 404, "not_found");
  });

  it("admins add members (200, the conversation); non-admins get 403", async () => {
    const conv = await ctx.api.group(admin, [m1], "growing");
    const added = await ctx.api.post(`/conversations/${conv}/members`, admin.token, { user_ids: [m2.user_id] });
    expect(added.status).toBe(200);
    expect(added.json.conversation_id).toBe(conv);
    expect(added.json.members.map((m: any) => m.user_id).sort()).toEqual([admin.user_id, m1.user_id, m2.user_id].sort());
    expect(added.json.members.find((m: any) => m.user_id === m2.user_id).role).toBe("member");
    // the new member can read now
    expect((await ctx.api.get(`/conversations/${conv}`, m2.token)).status).toBe(200);

    expectError(await ctx.api.post(`/conversations/${conv}/members`, m1.token, { user_ids: [outsider.user_id] }), 403, "forbidden");
    expectError(await ctx.api.get(`/conversations/${conv}`, outsider.token), 403, "forbidden");
    expectError(await ctx.api.post(`/conversations/${conv}/members`, admin.token, { user_ids: ["u_ghost"] }), 404, "not_found");
    expectError(await ctx.api.post(`/conversations/${conv}/members`, admin.token, { user_ids: [] }), 400, "invalid_request");
    // adding someone already there changes nothing
    const same = await ctx.api.post(`/conversations/${conv}/members`, admin.token, { user_ids: [m1.user_id] });
    expect(same.status).toBe(200);
    expect(same.json.members).toHaveLength(3);
  });

  it("adding past 256 members is 422", async () => {
    const conv = await ctx.api.group(admin, [m1], "almost");
    const res = await ctx.api.post(`/conversations/${conv}/members`, admin.token, { user_ids: fakeIds(255, "c") });
    expectError(res, 422, "limit_exceeded");
  });

  it("members cannot be added to or removed from a direct conversation", async () => {
    const conv = await ctx.api.direct(m1, m2);
    const add = await ctx.api.post(`/conversations/${conv}/members`, m1.token, { user_ids: [outsider.user_id] });
    expect(add.status).toBe(403);
    expect((await ctx.api.get(`/conversations/${conv}`, outsider.token)).status).toBe(403);
  });

  it("non-admins cannot remove others (403); anyone can leave (204) and is then a non-member", async () => {
    const conv = await ctx.api.group(admin, [m1, m2], "leaving");
    expectError(await ctx.api.del(`/conversations/${conv}/members/${m2.user_id}`, m1.token), 403, "forbidden");
    expect((await ctx.api.get(`/conversations/${conv}`, m2.token)).status).toBe(200);

    expect((await ctx.api.del(`/conversations/${conv}/members/${m1.user_id}`, m1.token)).status).toBe(204);
    expectError(await ctx.api.get(`/conversations/${conv}`, m1.token), 403, "forbidden");
    expectError(await ctx.api.send(m1, conv), 403, "forbidden");
    const rest = await ctx.api.get(`/conversations/${conv}`, admin.token);
    expect(rest.json.members.map((m: any) => m.user_id).sort()).toEqual([admin.user_id, m2.user_id].sort());
    // removing someone who is not a member
    const again = await ctx.api.del(`/conversations/${conv}/members/${m1.user_id}`, admin.token);
    expect(again.status).toBeGreaterThanOrEqual(400);
  });

  it("a removed member's conversation socket closes with 4403; their reads and sends are 403; their device socket gets `removed`", async () => {
    const conv = await ctx.api.group(admin, [m1, m2], "eviction");
    await ctx.api.sendOk(admin, conv, cmid("before"));
    const victimSync = await ctx.api.sync(m2);
    const victimWs = await ctx.api.convSocket(m2, conv);
    const stayWs = await ctx.api.convSocket(m1, conv);
    const stayerSync = await ctx.api.sync(m1);
    await Promise.all([victimSync.roundTrip(), victimWs.roundTrip(), stayWs.roundTrip(), stayerSync.roundTrip()]);

    expect((await ctx.api.del(`/conversations/${conv}/members/${m2.user_id}`, admin.token)).status).toBe(204);
    expect((await victimWs.waitClose(5_000)).code).toBe(4403);

    expectError(await ctx.api.get(`/conversations/${conv}`, m2.token), 403, "forbidden");
    expectError(await ctx.api.get(`/conversations/${conv}/messages`, m2.token), 403, "forbidden");
    expectError(await ctx.api.send(m2, conv), 403, "forbidden");
    expectError(await ctx.api.post(`/conversations/${conv}/read`, m2.token, { up_to_seq: 1 }), 403, "forbidden");
    const reopen = await ctx.api.openSocket(`/conversations/${conv}/ws`, m2.token);
    expect(reopen.status).toBe(403);
    expect(reopen.refusalJson).toMatchObject({ error: { code: "forbidden" } });

    // the victim's device socket learns it was removed
    const removed = await victimSync.waitFor((f) => f.type === "removed" && f.conversation_id === conv, 5_000, "removed event");
    expect(removed.cursor).toEqual(expect.any(String));
    // the others' device sockets see the changed conversation
    const changed = await stayerSync.waitFor(
      (f) => f.type === "conversation" && f.conversation.conversation_id === conv && f.conversation.members.length === 2,
      5_000,
      "conversation change",
    );
    expect(changed.conversation.members.map((m: any) => m.user_id)).not.toContain(m2.user_id);

    // a message after the removal reaches the stayer but not the victim
    const after = await ctx.api.sendOk(admin, conv, cmid("after"));
    await stayWs.waitFor((f) => f.type === "message" && f.message.message_id === after.message_id, 5_000, "message to stayer");
    await stayerSync.waitFor((f) => f.type === "message" && f.message.message_id === after.message_id, 5_000, "event to stayer");
    await victimSync.roundTrip();
    expect(victimSync.frames.some((f) => f.type === "message" && f.message.message_id === after.message_id)).toBe(false);

    // and the conversation leaves the victim's list
    await eventually(async () => {
      const res = await ctx.api.get("/conversations", m2.token);
      return res.json.conversations.some((c: any) => c.conversation_id === conv) ? undefined : true;
    }, 3_000, "conversation gone from the removed member's list");
    await closeAll([victimSync, stayWs, stayerSync]);
  });

  it("a group keeps an admin when its admin leaves", async () => {
    const conv = await ctx.api.group(admin, [m1, m2], "succession");
    expect((await ctx.api.del(`/conversations/${conv}/members/${admin.user_id}`, admin.token)).status).toBe(204);
    const res = await ctx.api.get(`/conversations/${conv}`, m1.token);
    expect(res.json.members.some((m: any) => m.role === "admin")).toBe(true);
  });

  it("new members are told on their device socket", async () => {
    const conv = await ctx.api.group(admin, [m1], "invite");
    const sync = await ctx.api.sync(outsider);
    await sync.roundTrip();
    expect((await ctx.api.post(`/conversations/${conv}/members`, admin.token, { user_ids: [outsider.user_id] })).status).toBe(200);
    const ev = await sync.waitFor((f) => f.type === "conversation" && f.conversation.conversation_id === conv, 5_000, "conversation event");
    expect(ev.cursor).toEqual(expect.any(String));
    expect(ev.conversation.members.map((m: any) => m.user_id)).toContain(outsider.user_id);
    await sync.close();
    // cleanup for the other tests: outsider leaves
    expect((await ctx.api.del(`/conversations/${conv}/members/${outsider.user_id}`, outsider.token)).status).toBe(204);
  });
});
