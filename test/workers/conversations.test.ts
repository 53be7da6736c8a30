/** Conversations, members and the conversation list: CONTRACT.md sections 1, 2 and 4. */
import { describe, expect, it } from "vitest";
import {
  direct,
  eventually,
  expectError,
  fakeConversationId,
  fakeUserId,
  history,
  list,
  mark,
  seedUsers,
  sleep,
  user,
  type User,
} from "./api-helpers";
import { call, group, send } from "./helpers";

const ID = /^[gc]_[a-z2-7]{26}$/;

const getConv = (s: User, id: string) => call("GET", `/conversations/${id}`, { token: s.token });
const addMembers = (s: User, id: string, userIds: string[]) =>
  call("POST", `/conversations/${id}/members`, { token: s.token, body: { user_ids: userIds } });
const removeMember = (s: User, id: string, userId: string) => call("DELETE", `/conversations/${id}/members/${userId}`, { token: s.token });
const createGroup = (s: User, members: string[], name = "team") =>
  call("POST", "/conversations", { token: s.token, body: { type: "group", name, members } });

/** Section 17: a group whose earlier messages new members see too. */
async function sharedGroup(owner: User, members: User[]) {
  const res = await call("POST", "/conversations", {
    token: owner.token,
    body: { type: "group", name: "shared", members: members.map((m) => m.user_id), history: "shared" },
  });
  expect(res.status).toBe(201);
  expect(res.json.history).toBe("shared");
  return res.json.conversation_id as string;
}

const memberIds = (conv: any) => (conv.members as any[]).map((m) => m.user_id).sort();
const roles = (conv: any) => Object.fromEntries((conv.members as any[]).map((m) => [m.user_id, m.role]));

function expectConversationShape(conv: any) {
  expect(Object.keys(conv).sort()).toEqual(["conversation_id", "created_at", "encryption", "history", "members", "name", "type"]);
  expect(conv.conversation_id).toMatch(ID);
  expect(typeof conv.created_at).toBe("number");
  for (const m of conv.members) {
    expect(Object.keys(m).sort()).toEqual(["role", "user_id"]);
    expect(["admin", "member"]).toContain(m.role);
  }
}

describe("POST /v1/conversations: direct", () => {
  it("creates with 201, then answers 200 with the same conversation from either side", async () => {
    const a = await user();
    const b = await user();
    const first = await direct(a, b);
    expect(first.status).toBe(201);
    expectConversationShape(first.json);
    expect(first.json.type).toBe("direct");
    expect(first.json.name).toBeNull();
    expect(first.json.conversation_id).toMatch(/^c_/);
    expect(first.json.members.every((m: any) => m.role === "member")).toBe(true);
    expect(memberIds(first.json)).toEqual([a.user_id, b.user_id].sort());

    const again = await direct(a, b);
    const reverse = await direct(b, a);
    expect(again.status).toBe(200);
    expect(reverse.status).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(reverse.json).toEqual(first.json);

    for (const s of [a, b]) {
      const got = await getConv(s, first.json.conversation_id);
      expect(got.status).toBe(200);
      expect(got.json).toEqual(first.json);
    }
  });

  it("keeps messages across a repeated create", async () => {
    const a = await user();
    const b = await user();
    const id = (await direct(a, b)).json.conversation_id;
    expect((await send(a, id, "hello")).status).toBe(201);
    expect((await direct(b, a)).json.conversation_id).toBe(id);
    expect((await history(b, id)).json.messages.map((m: any) => m.content)).toEqual(["hello"]);
  });

  it("gives different pairs different conversations", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const ab = (await direct(a, b)).json.conversation_id;
    const ac = (await direct(a, c)).json.conversation_id;
    const bc = (await direct(b, c)).json.conversation_id;
    expect(new Set([ab, ac, bc]).size).toBe(3);
    expectError(await getConv(c, ab), 403, "forbidden");
  });

  it("answers 404 for an unknown peer and 400 for oneself", async () => {
    const a = await user();
    expectError(await call("POST", "/conversations", { token: a.token, body: { type: "direct", peer: fakeUserId() } }), 404, "not_found");
    expectError(await call("POST", "/conversations", { token: a.token, body: { type: "direct", peer: a.user_id } }), 400, "invalid_request");
  });

  it("does not leave a half-made conversation behind an unknown peer", async () => {
    const a = await user();
    const ghost = fakeUserId();
    expectError(await call("POST", "/conversations", { token: a.token, body: { type: "direct", peer: ghost } }), 404, "not_found");
    expectError(await call("POST", "/conversations", { token: a.token, body: { type: "direct", peer: ghost } }), 404, "not_found");
    await sleep(100);
    expect((await list(a)).json.conversations).toEqual([]);
  });

  it("yields a single conversation from concurrent creates on both sides", async () => {
    const a = await user();
    const b = await user();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? direct(a, b) : direct(b, a))));
    const ids = new Set(results.map((r) => r.json?.conversation_id));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(ID);
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    const id = [...ids][0] as string;
    expect(memberIds((await getConv(a, id)).json)).toEqual([a.user_id, b.user_id].sort());
    await eventually(async () => {
      for (const s of [a, b]) expect((await list(s)).json.conversations.map((c: any) => c.conversation_id)).toEqual([id]);
    });
  });

  it("answers 400 for a malformed create body", async () => {
    const a = await user();
    const b = await user();
    for (const body of [
      {},
      { type: "direct" },
      { type: "direct", peer: 5 },
      { type: "direct", peer: "" },
      { type: "channel", peer: b.user_id },
      { peer: b.user_id },
      { type: "group", members: [] },
      { type: "group", name: "", members: [] },
      { type: "group", name: "x" },
      { type: "group", name: "x", members: b.user_id },
      { type: "group", name: "x", members: [5] },
    ]) {
      const res = await call("POST", "/conversations", { token: a.token, body });
      expect.soft(res.status, JSON.stringify(body)).toBe(400);
      if (res.status === 400) expectError(res, 400, "invalid_request");
    }
    expectError(await call("POST", "/conversations", { token: a.token, raw: "{oops" }), 400, "invalid_request");
  });
});

describe("POST /v1/conversations: group", () => {
  it("creates with 201; the creator is admin, the others members", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const res = await createGroup(a, [b.user_id, c.user_id], "friends");
    expect(res.status).toBe(201);
    expectConversationShape(res.json);
    expect(res.json.conversation_id).toMatch(/^g_/);
    expect(res.json).toMatchObject({ type: "group", name: "friends" });
    expect(roles(res.json)).toEqual({ [a.user_id]: "admin", [b.user_id]: "member", [c.user_id]: "member" });
    const got = await getConv(b, res.json.conversation_id);
    expect(got.status).toBe(200);
    expect(got.json).toEqual(res.json);
  });

  it("creates a new group every time, even with the same members", async () => {
    const a = await user();
    const b = await user();
    const one = await createGroup(a, [b.user_id]);
    const two = await createGroup(a, [b.user_id]);
    expect(two.status).toBe(201);
    expect(one.json.conversation_id).not.toBe(two.json.conversation_id);
  });

  it("counts the creator once, and repeated members once", async () => {
    const a = await user();
    const b = await user();
    const res = await createGroup(a, [b.user_id, b.user_id, a.user_id]);
    expect(res.status).toBe(201);
    expect(roles(res.json)).toEqual({ [a.user_id]: "admin", [b.user_id]: "member" });
  });

  it("allows a group of the creator alone", async () => {
    const a = await user();
    const res = await createGroup(a, []);
    expect(res.status).toBe(201);
    expect(roles(res.json)).toEqual({ [a.user_id]: "admin" });
  });

  it("answers 422 for 257 members in all, before looking the members up", async () => {
    const a = await user();
    const fakes = Array.from({ length: 256 }, (_, i) => fakeUserId(i));
    expectError(await createGroup(a, fakes), 422, "limit_exceeded");
    // 256 in all is within the limit, so the unknown ids are what is wrong.
    expectError(await createGroup(a, fakes.slice(1)), 404, "not_found");
  });

  it("answers 404 when any member is unknown", async () => {
    const a = await user();
    const b = await user();
    expectError(await createGroup(a, [b.user_id, fakeUserId()]), 404, "not_found");
    await sleep(100);
    expect((await list(b)).json.conversations).toEqual([]);
  });
});

describe("GET /v1/conversations/:id", () => {
  it("answers members 200, non-members 403, unknown ids 404", async () => {
    const a = await user();
    const b = await user();
    const outsider = await user();
    const id = await group(a, [b]);
    expect((await getConv(b, id)).status).toBe(200);
    expectError(await getConv(outsider, id), 403, "forbidden");
    expectError(await getConv(a, fakeConversationId("g")), 404, "not_found");
    expectError(await getConv(a, fakeConversationId("c")), 404, "not_found");
    for (const garbage of ["nope", "g_short", `g_${"A".repeat(26)}`, `x_${"a".repeat(26)}`, `${id}x`, "%20"]) {
      const res = await getConv(a, garbage);
      expect.soft(res.status, garbage).toBe(404);
      if (res.status === 404) expectError(res, 404, "not_found");
    }
  });
});

describe("POST /v1/conversations/:id/members", () => {
  it("lets an admin add members: 200 with the new member list", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const id = await group(a, [b]);
    const res = await addMembers(a, id, [c.user_id]);
    expect(res.status).toBe(200);
    expectConversationShape(res.json);
    expect(roles(res.json)).toEqual({ [a.user_id]: "admin", [b.user_id]: "member", [c.user_id]: "member" });
    expect((await getConv(c, id)).status).toBe(200);
    expect((await send(c, id, "joined")).status).toBe(201);
  });

  it("answers 200 and changes nothing when the users are already members", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    const res = await addMembers(a, id, [b.user_id, a.user_id]);
    expect(res.status).toBe(200);
    expect(roles(res.json)).toEqual({ [a.user_id]: "admin", [b.user_id]: "member" });
  });

  it("refuses a non-admin member (403) and a non-member (403)", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const outsider = await user();
    const id = await group(a, [b]);
    expectError(await addMembers(b, id, [c.user_id]), 403, "forbidden");
    expectError(await addMembers(outsider, id, [c.user_id]), 403, "forbidden");
    expectError(await addMembers(outsider, id, [outsider.user_id]), 403, "forbidden");
    expect(memberIds((await getConv(a, id)).json)).toEqual([a.user_id, b.user_id].sort());
  });

  it("answers 422 when the group would exceed 256, before looking the users up", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    const fakes = Array.from({ length: 255 }, (_, i) => fakeUserId(i));
    expectError(await addMembers(a, id, fakes), 422, "limit_exceeded");
    expectError(await addMembers(a, id, fakes.slice(1)), 404, "not_found");
    expect(memberIds((await getConv(a, id)).json)).toEqual([a.user_id, b.user_id].sort());
  });

  it("never lets concurrent adds push a group past 256; exactly 256 is fine", async () => {
    const a = await user();
    const seeded = await seedUsers(250 + 6 * 3 + 3);
    const created = await createGroup(a, seeded.slice(0, 250), "nearly-full"); // 251 in all
    expect(created.status).toBe(201);
    const id = created.json.conversation_id;
    // Six concurrent adds of 3: each fits alone (254), but only one of them fits in all.
    const batches = Array.from({ length: 6 }, (_, i) => seeded.slice(250 + i * 3, 253 + i * 3));
    const results = await Promise.all(batches.map((ids) => addMembers(a, id, ids)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 422, 422, 422, 422, 422]);
    for (const r of results) if (r.status === 422) expectError(r, 422, "limit_exceeded");
    expect((await getConv(a, id)).json.members).toHaveLength(254);
    // Up to exactly 256 by adding; re-adding existing members counts nobody; a 257th is refused.
    const rest = seeded.slice(268);
    expect((await addMembers(a, id, rest.slice(0, 2))).json.members).toHaveLength(256);
    expect((await addMembers(a, id, [seeded[0]!, seeded[1]!])).status).toBe(200);
    expectError(await addMembers(a, id, [rest[2]!]), 422, "limit_exceeded");
    expect((await getConv(a, id)).json.members).toHaveLength(256);
  }, 30_000);

  it("answers 404 for an unknown user and adds nobody", async () => {
    const a = await user();
    const c = await user();
    const id = await group(a, []);
    expectError(await addMembers(a, id, [c.user_id, fakeUserId()]), 404, "not_found");
    expect(memberIds((await getConv(a, id)).json)).toEqual([a.user_id]);
    expectError(await getConv(c, id), 403, "forbidden");
  });

  it("refuses to add to a direct conversation (403)", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const id = (await direct(a, b)).json.conversation_id;
    expectError(await addMembers(a, id, [c.user_id]), 403, "forbidden");
    expectError(await addMembers(b, id, [c.user_id]), 403, "forbidden");
    expect(memberIds((await getConv(a, id)).json)).toEqual([a.user_id, b.user_id].sort());
  });

  it("answers 404 for unknown conversations and 400 for bad bodies", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, []);
    expectError(await addMembers(a, fakeConversationId(), [b.user_id]), 404, "not_found");
    expectError(await addMembers(a, "garbage", [b.user_id]), 404, "not_found");
    for (const body of [{}, { user_ids: [] }, { user_ids: b.user_id }, { user_ids: [1] }]) {
      const res = await call("POST", `/conversations/${id}/members`, { token: a.token, body });
      expect.soft(res.status, JSON.stringify(body)).toBe(400);
      if (res.status === 400) expectError(res, 400, "invalid_request");
    }
  });
});

describe("DELETE /v1/conversations/:id/members/:user_id", () => {
  it("lets an admin remove a member (204); they lose access to read, history and send", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const id = await group(a, [b, c]);
    expect((await send(b, id, "before")).status).toBe(201);
    const res = await removeMember(a, id, b.user_id);
    expect(res.status).toBe(204);
    expect(res.json).toBeNull();
    expect(memberIds((await getConv(a, id)).json)).toEqual([a.user_id, c.user_id].sort());

    expectError(await getConv(b, id), 403, "forbidden");
    expectError(await history(b, id), 403, "forbidden");
    expectError(await send(b, id, "after"), 403, "forbidden");
    expectError(await mark(b, id, "read", 1), 403, "forbidden");
    expectError(await removeMember(b, id, b.user_id), 403, "forbidden");
    // Nothing of theirs landed after removal.
    expect((await history(a, id)).json.messages.map((m: any) => m.client_message_id)).toEqual(["before"]);
  });

  it("refuses a member removing another member (403)", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const id = await group(a, [b, c]);
    expectError(await removeMember(b, id, c.user_id), 403, "forbidden");
    expectError(await removeMember(b, id, a.user_id), 403, "forbidden");
    expect(memberIds((await getConv(a, id)).json)).toEqual([a.user_id, b.user_id, c.user_id].sort());
  });

  it("refuses an outsider (403), even naming themself", async () => {
    const a = await user();
    const b = await user();
    const outsider = await user();
    const id = await group(a, [b]);
    expectError(await removeMember(outsider, id, b.user_id), 403, "forbidden");
    expectError(await removeMember(outsider, id, outsider.user_id), 403, "forbidden");
  });

  it("lets a member leave (204)", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    expect((await removeMember(b, id, b.user_id)).status).toBe(204);
    expectError(await getConv(b, id), 403, "forbidden");
    expect(memberIds((await getConv(a, id)).json)).toEqual([a.user_id]);
  });

  it("answers 404 for removing a non-member or an unknown conversation", async () => {
    const a = await user();
    const b = await user();
    const outsider = await user();
    const id = await group(a, [b]);
    expectError(await removeMember(a, id, outsider.user_id), 404, "not_found");
    expectError(await removeMember(a, id, fakeUserId()), 404, "not_found");
    expect((await removeMember(a, id, b.user_id)).status).toBe(204);
    expectError(await removeMember(a, id, b.user_id), 404, "not_found");
    expectError(await removeMember(a, fakeConversationId(), b.user_id), 404, "not_found");
    expectError(await removeMember(a, "garbage", b.user_id), 404, "not_found");
  });

  it("removes a member once when removals race: one 204, the rest 404", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const id = await group(a, [b, c]);
    const results = await Promise.all(Array.from({ length: 4 }, () => removeMember(a, id, b.user_id)));
    expect(results.map((r) => r.status).sort()).toEqual([204, 404, 404, 404]);
    expect(memberIds((await getConv(a, id)).json)).toEqual([a.user_id, c.user_id].sort());
  });

  it("refuses removals from a direct conversation (403)", async () => {
    const a = await user();
    const b = await user();
    const id = (await direct(a, b)).json.conversation_id;
    expectError(await removeMember(a, id, b.user_id), 403, "forbidden");
    expectError(await removeMember(a, id, a.user_id), 403, "forbidden");
    expect(memberIds((await getConv(a, id)).json)).toEqual([a.user_id, b.user_id].sort());
  });

  it("promotes someone when the last admin leaves", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const d = await user();
    const id = await group(a, [b, c]);
    expect((await removeMember(a, id, a.user_id)).status).toBe(204);
    const conv = (await getConv(b, id)).json;
    expect(memberIds(conv)).toEqual([b.user_id, c.user_id].sort());
    const admins = conv.members.filter((m: any) => m.role === "admin");
    expect(admins).toHaveLength(1);
    // The promoted member can act as admin.
    const promoted = admins[0].user_id === b.user_id ? b : c;
    expect((await addMembers(promoted, id, [d.user_id])).status).toBe(200);
  });

  it("does not promote anyone while another admin remains", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const id = await group(a, [b, c]);
    // b leaves: a is still the admin.
    expect((await removeMember(b, id, b.user_id)).status).toBe(204);
    expect(roles((await getConv(a, id)).json)).toEqual({ [a.user_id]: "admin", [c.user_id]: "member" });
  });

  it("lets a removed member be added back", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    expect((await removeMember(a, id, b.user_id)).status).toBe(204);
    expect((await addMembers(a, id, [b.user_id])).status).toBe(200);
    expect((await getConv(b, id)).status).toBe(200);
    expect((await send(b, id, "back")).status).toBe(201);
  });
});

describe("GET /v1/conversations", () => {
  const ids = async (s: User, query = "") => {
    const res = await list(s, query);
    expect(res.status).toBe(200);
    return (res.json.conversations as any[]).map((c) => c.conversation_id as string);
  };

  it("answers an empty list for a new user", async () => {
    const a = await user();
    const res = await list(a);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ conversations: [], next_cursor: null });
  });

  it("lists each conversation with the contract's fields", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b], "named");
    const summary = await eventually(async () => {
      const [c] = (await list(b)).json.conversations;
      expect(c?.conversation_id).toBe(id);
      return c;
    });
    for (const k of ["conversation_id", "type", "name", "members", "last_message", "unread_count", "last_read_seq"]) expect(summary).toHaveProperty(k);
    expect(summary).toMatchObject({ type: "group", name: "named", last_message: null, unread_count: 0, last_read_seq: 0 });
    expect(roles(summary)).toEqual({ [a.user_id]: "admin", [b.user_id]: "member" });
  });

  it("shows a member added later to a shared-history group the conversation's last message, not null", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const id = await sharedGroup(a, [b]);
    await send(a, id, "m1");
    const last = (await send(b, id, "m2")).json;
    expect((await addMembers(a, id, [c.user_id])).status).toBe(200);
    // c can read the history...
    expect((await history(c, id)).json.messages.map((m: any) => m.seq)).toEqual([1, 2]);
    // ...so the list must not claim there is no message.
    await eventually(async () => {
      const summary = (await list(c)).json.conversations.find((x: any) => x.conversation_id === id);
      expect(summary?.last_message).toEqual(last);
    });
  });

  it("shows a member re-added to a shared-history group the message sent while they were away as the last message", async () => {
    const a = await user();
    const b = await user();
    const id = await sharedGroup(a, [b]);
    await send(a, id, "before");
    expect((await removeMember(a, id, b.user_id)).status).toBe(204);
    const away = (await send(a, id, "while-away")).json;
    expect((await addMembers(a, id, [b.user_id])).status).toBe(200);
    await eventually(async () => {
      const summary = (await list(b)).json.conversations.find((x: any) => x.conversation_id === id);
      expect(summary?.last_message).toEqual(away);
    });
  });

  it("counts, for a member added later to a shared-history group, the earlier messages from others as unread (contract: seq above the read marker)", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const id = await sharedGroup(a, [b]);
    await send(a, id, "m1");
    await send(b, id, "m2");
    expect((await addMembers(a, id, [c.user_id])).status).toBe(200);
    await send(a, id, "m3");
    await eventually(async () => {
      const summary = (await list(c)).json.conversations.find((x: any) => x.conversation_id === id);
      expect(summary).toMatchObject({ last_read_seq: 0, unread_count: 3 });
    });
  });

  it("orders by most recent activity first", async () => {
    const a = await user();
    const b = await user();
    const c1 = await group(a, [b], "one");
    await sleep(5);
    const c2 = await group(a, [b], "two");
    await sleep(5);
    const c3 = await group(a, [b], "three");
    await eventually(async () => expect(await ids(a)).toEqual([c3, c2, c1]));
    await sleep(5);
    expect((await send(b, c1, "bump1")).status).toBe(201);
    await eventually(async () => expect(await ids(a)).toEqual([c1, c3, c2]));
    await sleep(5);
    expect((await send(a, c2, "bump2")).status).toBe(201);
    await eventually(async () => {
      expect(await ids(a)).toEqual([c2, c1, c3]);
      expect(await ids(b)).toEqual([c2, c1, c3]);
    });
  });

  it("shows the last message", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    await send(a, id, "m1", "first");
    const last = (await send(b, id, "m2", "second")).json;
    await eventually(async () => {
      const [c] = (await list(a)).json.conversations;
      expect(c.last_message).toEqual(last);
    });
  });

  it("counts unread messages from others above the read marker, and reports last_read_seq", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const id = await group(a, [b, c]);
    for (const n of [1, 2, 3]) expect((await send(b, id, `b${n}`)).status).toBe(201); // seq 1..3
    for (const n of [1, 2]) expect((await send(a, id, `a${n}`)).status).toBe(201); // seq 4..5
    expect((await send(c, id, "c1")).status).toBe(201); // seq 6

    const summaryOf = async (s: User) => (await list(s)).json.conversations.find((x: any) => x.conversation_id === id);
    await eventually(async () => {
      expect(await summaryOf(a)).toMatchObject({ unread_count: 4, last_read_seq: 0 });
      expect(await summaryOf(b)).toMatchObject({ unread_count: 3, last_read_seq: 0 });
      expect(await summaryOf(c)).toMatchObject({ unread_count: 5, last_read_seq: 0 });
    });

    expect((await mark(a, id, "read", 2)).status).toBe(204);
    await eventually(async () => expect(await summaryOf(a)).toMatchObject({ unread_count: 2, last_read_seq: 2 }));
    // The others' counts are theirs alone.
    expect(await summaryOf(b)).toMatchObject({ unread_count: 3, last_read_seq: 0 });

    // A delivered marker is not a read marker.
    expect((await mark(b, id, "delivered", 6)).status).toBe(204);
    expect((await mark(a, id, "read", 6)).status).toBe(204);
    await eventually(async () => {
      expect(await summaryOf(a)).toMatchObject({ unread_count: 0, last_read_seq: 6 });
    });
    await sleep(300);
    expect(await summaryOf(b)).toMatchObject({ unread_count: 3, last_read_seq: 0 });

    // A lower read marker is ignored.
    expect((await mark(a, id, "read", 1)).status).toBe(204);
    expect((await send(b, id, "b4")).status).toBe(201); // seq 7
    await eventually(async () => expect(await summaryOf(a)).toMatchObject({ unread_count: 1, last_read_seq: 6 }));
  });

  it("pages with limit and next_cursor, in activity order with nothing skipped or repeated", async () => {
    const a = await user();
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      made.push(await group(a, [], `p${i}`));
      await sleep(3);
    }
    const expected = [...made].reverse();
    await eventually(async () => expect(await ids(a)).toEqual(expected));

    const seen: string[] = [];
    let cursor: string | null = null;
    const sizes: number[] = [];
    for (let page = 0; page < 5; page++) {
      const res = await list(a, `limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      expect(res.status).toBe(200);
      sizes.push(res.json.conversations.length);
      seen.push(...res.json.conversations.map((c: any) => c.conversation_id));
      cursor = res.json.next_cursor;
      if (cursor === null) break;
      expect(typeof cursor).toBe("string");
    }
    expect(sizes).toEqual([2, 2, 1]);
    expect(seen).toEqual(expected);

    // A limit that covers everything answers no cursor; limit 1 answers one.
    expect((await list(a, "limit=5")).json.next_cursor).toBeNull();
    const one = await list(a, "limit=1");
    expect(one.json.conversations).toHaveLength(1);
    expect(one.json.next_cursor).not.toBeNull();
    expect((await list(a, "limit=200")).json.conversations).toHaveLength(5);
  });

  it("pages correctly when conversations share the same activity time", async () => {
    const a = await user();
    const made = await Promise.all(Array.from({ length: 6 }, (_, i) => group(a, [], `same${i}`)));
    await eventually(async () => expect((await ids(a)).sort()).toEqual([...made].sort()));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: any = await list(a, `limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      expect(res.status).toBe(200);
      seen.push(...res.json.conversations.map((c: any) => c.conversation_id));
      cursor = res.json.next_cursor;
    } while (cursor !== null && seen.length < 20);
    expect(seen).toEqual(await ids(a));
  });

  it("answers 400 for a bad cursor or limit", async () => {
    const a = await user();
    for (const q of [
      "cursor=garbage",
      "cursor=%%%",
      `cursor=${btoa(JSON.stringify({ a: 1 }))}`,
      `cursor=${btoa(JSON.stringify(["x", 1]))}`,
      "limit=0",
      "limit=201",
      "limit=abc",
      "limit=-1",
      "limit=1.5",
      "limit=",
    ]) {
      const res = await list(a, q);
      expect.soft(res.status, q).toBe(400);
      if (res.status === 400) expectError(res, 400, "invalid_request");
    }
  });

  it("drops a conversation from a removed member's list, and from a leaver's", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const id = await group(a, [b, c]);
    const keep = await group(a, [b, c]);
    await eventually(async () => {
      expect((await ids(b)).sort()).toEqual([id, keep].sort());
      expect((await ids(c)).sort()).toEqual([id, keep].sort());
    });
    expect((await removeMember(a, id, b.user_id)).status).toBe(204);
    expect((await removeMember(c, id, c.user_id)).status).toBe(204);
    await eventually(async () => {
      expect(await ids(b)).toEqual([keep]);
      expect(await ids(c)).toEqual([keep]);
    });
    // The list's member snapshot follows the change too.
    await eventually(async () => {
      const summary = (await list(a)).json.conversations.find((x: any) => x.conversation_id === id);
      expect(memberIds(summary)).toEqual([a.user_id]);
    });
  });
});
