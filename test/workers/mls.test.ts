/**
 * The MLS Delivery Service, CONTRACT.md section 10: encrypted conversations and commits,
 * with real groups, commits, group infos and welcomes made by ts-mls (mls/adapter.ts).
 */
import { describe, expect, it } from "vitest";
import {
  commitChanges,
  commitExternalJoin,
  encryptApplication,
  joinFromWelcome,
  leafOf,
  newGroup,
  newKeyPackage,
  type DeviceKeyPackage,
  type MlsGroupState,
} from "../../mls/adapter";
import { eventually, expectError, fakeConversationId, history, list, user, type User } from "./api-helpers";
import { call, openSocket } from "./helpers";

const device = (s: User) => ({ userId: s.user_id, deviceId: s.device_id });
const keyPackage = (s: User) => newKeyPackage(device(s));

async function mlsGroup(owner: User, members: User[]): Promise<string> {
  const res = await call("POST", "/conversations", {
    token: owner.token,
    body: { type: "group", name: "secret", members: members.map((m) => m.user_id), encryption: "mls" },
  });
  expect(res.status).toBe(201);
  expect(res.json.encryption).toBe("mls");
  return res.json.conversation_id;
}

let cmid = 0;
const postCommit = (s: User, id: string, epoch: number, c: { commit: string; group_info: string; welcome?: string }, clientMessageId = `commit-${cmid++}`) =>
  call("POST", `/conversations/${id}/mls/commits`, {
    token: s.token,
    body: { epoch, commit: c.commit, group_info: c.group_info, ...(c.welcome ? { welcome: c.welcome } : {}), client_message_id: clientMessageId },
  });

async function login(s: User): Promise<User> {
  const res = await call("POST", "/auth/login", { body: { handle: s.handle, password: "correct horse" } });
  expect(res.status).toBe(200);
  return { ...res.json, handle: s.handle };
}

/** Alice's group with Bob in it at epoch 1, through the directory like a client would. */
async function aliceAndBob() {
  const alice = await user("ma");
  const bob = await user("mb");
  const id = await mlsGroup(alice, [bob]);
  const aliceKp = await keyPackage(alice);
  const bobKp = await keyPackage(bob);
  expect((await call("POST", "/mls/key-packages", { token: bob.token, body: { key_packages: [bobKp.encoded] } })).status).toBe(201);
  const claimed = await call("POST", "/mls/key-packages/claim", { token: alice.token, body: { user_ids: [bob.user_id] } });
  expect(claimed.json.key_packages).toEqual([{ user_id: bob.user_id, device_id: bob.device_id, key_package: bobKp.encoded }]);
  let state: MlsGroupState = await newGroup(id, aliceKp);
  const first = await commitChanges(state, { add: [claimed.json.key_packages[0].key_package] });
  const res = await postCommit(alice, id, 0, first);
  expect(res.status).toBe(201);
  state = first.state;
  return { alice, bob, id, state, aliceKp, bobKp, first, firstSeq: res.json.seq as number };
}

describe("encryption: mls", () => {
  it("is reported, and such a conversation takes only kind encrypted", async () => {
    const a = await user("me");
    const b = await user("me");
    const id = await mlsGroup(a, [b]);
    expect((await call("GET", `/conversations/${id}`, { token: b.token })).json.encryption).toBe("mls");
    for (const kind of ["text", "media"]) {
      const res = await call("POST", `/conversations/${id}/messages`, {
        token: a.token,
        body: { client_message_id: `x-${kind}`, kind, content: "hi", media_id: "m_1" },
      });
      expectError(res, 400, "invalid_request");
    }
    const socket = (await openSocket(`/conversations/${id}/ws`, a.token)).socket!;
    socket.send({ type: "send", client_message_id: "ws-text", kind: "text", content: "hi" });
    expect(await socket.waitFor((f) => f.type === "error")).toMatchObject({ code: "invalid_request", ref: "ws-text" });
    socket.ws.close();
    const ok = await call("POST", `/conversations/${id}/messages`, { token: a.token, body: { client_message_id: "e1", kind: "encrypted", content: "Y2lwaGVy" } });
    expect(ok.status).toBe(201);
    // Commits go through their endpoint only; the kind is not one a client sends.
    const forged = await call("POST", `/conversations/${id}/messages`, { token: a.token, body: { client_message_id: "e2", kind: "mls_commit", content: "x" } });
    expectError(forged, 400, "invalid_request");
    const plain = await call("POST", "/conversations", { token: a.token, body: { type: "group", name: "plain", members: [b.user_id] } });
    expect(plain.json.encryption).toBe("none");
    await eventually(async () => {
      const listed = (await list(b)).json.conversations.find((c: any) => c.conversation_id === id);
      expect(listed.encryption).toBe("mls");
    });
  });

  it("refuses commits in a conversation that is not mls", async () => {
    const a = await user("me");
    const res = await call("POST", "/conversations", { token: a.token, body: { type: "group", name: "plain", members: [] } });
    const kp = await keyPackage(a);
    const c = await commitChanges(await newGroup(res.json.conversation_id, kp), {});
    expectError(await postCommit(a, res.json.conversation_id, 0, c), 400, "invalid_request");
  });
});

describe("POST /v1/conversations/:id/mls/commits", () => {
  it("accepts the commit of the current epoch, stores it as mls_commit and welcomes only the added device", async () => {
    const alice = await user("ma");
    const bob = await user("mb");
    const bob2 = await login(bob);
    const id = await mlsGroup(alice, [bob]);
    const bobSocket = (await openSocket("/sync?since=0", bob.token)).socket!;
    const bob2Socket = (await openSocket("/sync?since=0", bob2.token)).socket!;
    const aliceSocket = (await openSocket("/sync?since=0", alice.token)).socket!;
    const bobKp = await keyPackage(bob);
    const first = await commitChanges(await newGroup(id, await keyPackage(alice)), { add: [bobKp.encoded] });
    expect(first.welcome).toBeDefined();

    const res = await postCommit(alice, id, 0, first, "first-commit");
    expect(res.status).toBe(201);
    expect(res.json).toEqual({ epoch: 1, seq: 1 });

    const welcome = await bobSocket.waitFor((f) => f.type === "mls_welcome");
    expect(welcome).toEqual({ type: "mls_welcome", cursor: expect.any(String), conversation_id: id, epoch: 1, welcome: first.welcome });
    const joined = await joinFromWelcome(welcome.welcome, bobKp);
    expect(joined.groupContext.epoch).toBe(1n);
    // Every device sees the commit like any message; only the added device sees the welcome.
    for (const s of [bobSocket, bob2Socket, aliceSocket]) {
      const m = await s.waitFor((f) => f.type === "message" && f.message.conversation_id === id);
      expect(m.message).toMatchObject({ seq: 1, kind: "mls_commit", content: first.commit, sender_id: alice.user_id });
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(bob2Socket.frames.filter((f) => f.type === "mls_welcome")).toEqual([]);
    expect(aliceSocket.frames.filter((f) => f.type === "mls_welcome")).toEqual([]);
    // Replayed from the log to that device only.
    const again = (await openSocket("/sync?since=0", bob.token)).socket!;
    expect(await again.waitFor((f) => f.type === "mls_welcome")).toEqual(welcome);
    for (const s of [bobSocket, bob2Socket, aliceSocket, again]) s.ws.close();

    // Idempotent by client_message_id.
    const repeat = await postCommit(alice, id, 0, first, "first-commit");
    expect(repeat.status).toBe(200);
    expect(repeat.json).toEqual({ epoch: 1, seq: 1 });
    const messages = (await history(bob, id, "after_seq=0")).json.messages;
    expect(messages.map((m: any) => [m.seq, m.kind])).toEqual([[1, "mls_commit"]]);
  });

  it("answers 409 with the current epoch for any other epoch, storing nothing and welcoming nobody", async () => {
    const { alice, bob, id, state } = await aliceAndBob();
    const bob2 = await login(bob);
    const bob2Socket = (await openSocket("/sync?since=0", bob2.token)).socket!;
    const next = await commitChanges(state, { add: [(await keyPackage(bob2)).encoded] });
    for (const epoch of [0, 2, 7]) {
      const res = await postCommit(alice, id, epoch, next);
      expect(res.status).toBe(409);
      expect(res.json).toEqual({ error: { code: "conflict", message: expect.any(String) }, epoch: 1 });
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(bob2Socket.frames.filter((f) => f.type === "mls_welcome")).toEqual([]);
    expect((await history(bob, id, "after_seq=0")).json.messages).toHaveLength(1);
    // The right epoch is accepted, and its welcome then arrives.
    expect((await postCommit(alice, id, 1, next)).json).toEqual({ epoch: 2, seq: 2 });
    expect(await bob2Socket.waitFor((f) => f.type === "mls_welcome")).toMatchObject({ conversation_id: id, epoch: 2, welcome: next.welcome });
    bob2Socket.ws.close();
  });

  it("answers 403 for a leaf naming a non-member's device or a device that is not the user's", async () => {
    const { alice, bob, id, state } = await aliceAndBob();
    const carol = await user("mc");
    const stranger = await commitChanges(state, { add: [(await keyPackage(carol)).encoded] });
    expectError(await postCommit(alice, id, 1, stranger), 403, "forbidden");
    const madeUp = await commitChanges(state, { add: [(await newKeyPackage({ userId: bob.user_id, deviceId: "d_notbobs" })).encoded] });
    expectError(await postCommit(alice, id, 1, madeUp), 403, "forbidden");
    // Only members commit, and only as their own device.
    expectError(await postCommit(carol, id, 1, stranger), 403, "forbidden");
    const asBob = await commitChanges(state, {});
    expectError(await postCommit(bob, id, 1, asBob), 403, "forbidden");
    expect((await history(bob, id, "after_seq=0")).json.messages).toHaveLength(1);
    expect((await call("GET", `/conversations/${id}/mls/group-info`, { token: bob.token })).json.epoch).toBe(1);
  });

  it("refuses malformed MLS: not a commit, wrong group id, wrong epoch inside, no tree", async () => {
    const { alice, id, state, first } = await aliceAndBob();
    const next = await commitChanges(state, {});
    expectError(await postCommit(alice, id, 1, { ...next, commit: next.group_info }), 400, "invalid_request");
    expectError(await postCommit(alice, id, 1, { ...next, group_info: next.commit }), 400, "invalid_request");
    expectError(await postCommit(alice, id, 1, { ...next, group_info: first.group_info }), 400, "invalid_request");
    expectError(await postCommit(alice, id, 1, { ...next, welcome: next.commit }), 400, "invalid_request");
    const other = await commitChanges(await newGroup("g_someotherconversation", await keyPackage(alice)), {});
    expectError(await postCommit(alice, id, 1, other), 400, "invalid_request");
    expectError(await postCommit(alice, id, 1, { ...next, commit: "AAAA" }), 400, "invalid_request");
  });

  it("after a removal, refuses with pending_removals a commit that keeps the removed user's leaf", async () => {
    const { alice, bob, id, state } = await aliceAndBob();
    expect((await call("DELETE", `/conversations/${id}/members/${bob.user_id}`, { token: alice.token })).status).toBe(204);
    const keeps = await commitChanges(state, {});
    const res = await postCommit(alice, id, 1, keeps);
    expect(res.status).toBe(409);
    expect(res.json).toEqual({ error: { code: "conflict", message: expect.any(String) }, pending_removals: [bob.user_id] });
    const removes = await commitChanges(state, { remove: [leafOf(state, device(bob))!] });
    expect((await postCommit(alice, id, 1, removes)).json).toEqual({ epoch: 2, seq: 2 });
    // Bob is no member now: no group info for him.
    expectError(await call("GET", `/conversations/${id}/mls/group-info`, { token: bob.token }), 403, "forbidden");
  });

  it("lets a member's new device join by external commit, adding only itself", async () => {
    const { alice, bob, id, state } = await aliceAndBob();
    const bob2 = await login(bob);
    const info = await call("GET", `/conversations/${id}/mls/group-info`, { token: bob2.token });
    expect(info.status).toBe(200);
    const external = await commitExternalJoin(info.json.group_info, await keyPackage(bob2));
    // Another device cannot submit it as its own.
    expectError(await postCommit(bob, id, 1, external), 403, "forbidden");
    expect((await postCommit(bob2, id, 1, external)).json).toEqual({ epoch: 2, seq: 2 });
    // A stranger's device cannot join that way.
    const carol = await user("mc");
    const info2 = await call("GET", `/conversations/${id}/mls/group-info`, { token: alice.token });
    const carolJoin = await commitExternalJoin(info2.json.group_info, await keyPackage(carol));
    expectError(await postCommit(carol, id, 2, carolJoin), 403, "forbidden");
    void state;
  });

  it("refuses a commit giving one device two leaves (an external join of a device already in the group)", async () => {
    const { bob, id } = await aliceAndBob();
    const info = await call("GET", `/conversations/${id}/mls/group-info`, { token: bob.token });
    const again = await commitExternalJoin(info.json.group_info, await keyPackage(bob));
    expectError(await postCommit(bob, id, 1, again), 400, "invalid_request");
    expect((await history(bob, id, "after_seq=0")).json.messages).toHaveLength(1);
  });

  it("takes bodies above MAX_BODY_BYTES up to MAX_COMMIT_BODY_BYTES", async () => {
    const { alice, id } = await aliceAndBob();
    const big = "A".repeat(300 * 1024);
    const res = await call("POST", `/conversations/${id}/mls/commits`, {
      token: alice.token,
      body: { epoch: 1, commit: big, group_info: "AAAA", client_message_id: "big" },
    });
    expectError(res, 400, "invalid_request");
    const huge = await call("POST", `/conversations/${id}/mls/commits`, {
      token: alice.token,
      body: { epoch: 1, commit: "A".repeat(1100 * 1024), group_info: "AAAA", client_message_id: "huge" },
    });
    expectError(huge, 413, "too_large");
  });
});

describe("GET /v1/conversations/:id/mls/group-info", () => {
  it("answers the current epoch's group info, or an earlier epoch's", async () => {
    const { alice, bob, id, state, first } = await aliceAndBob();
    expect((await call("GET", `/conversations/${id}/mls/group-info`, { token: bob.token })).json).toEqual({ epoch: 1, group_info: first.group_info });
    const second = await commitChanges(state, {});
    expect((await postCommit(alice, id, 1, second)).status).toBe(201);
    expect((await call("GET", `/conversations/${id}/mls/group-info`, { token: bob.token })).json).toEqual({ epoch: 2, group_info: second.group_info });
    expect((await call("GET", `/conversations/${id}/mls/group-info?epoch=1`, { token: bob.token })).json).toEqual({ epoch: 1, group_info: first.group_info });
    expectError(await call("GET", `/conversations/${id}/mls/group-info?epoch=9`, { token: bob.token }), 404, "not_found");
    expectError(await call("GET", `/conversations/${id}/mls/group-info`, { token: (await user("mx")).token }), 403, "forbidden");
    const unknown = fakeConversationId();
    expectError(await call("GET", `/conversations/${unknown}/mls/group-info`, { token: alice.token }), 404, "not_found");
    expectError(await postCommit(alice, unknown, 0, second), 404, "not_found");
    const fresh = await mlsGroup(alice, []);
    expectError(await call("GET", `/conversations/${fresh}/mls/group-info`, { token: alice.token }), 404, "not_found");
  });
});

describe("PrivateMessages and the epoch", () => {
  it("takes a PrivateMessage of the current epoch only: one from before the last commit gets 409 with the epoch", async () => {
    const { alice, bob, id, state } = await aliceAndBob();
    const send = (content: string, clientMessageId: string) =>
      call("POST", `/conversations/${id}/messages`, { token: alice.token, body: { client_message_id: clientMessageId, kind: "encrypted", content } });
    const inEpoch1 = await encryptApplication(state, new TextEncoder().encode("one"));
    const stored = await send(inEpoch1.message, "pm-1");
    expect(stored.status).toBe(201);
    const late = await encryptApplication(inEpoch1.state, new TextEncoder().encode("made before the commit"));
    const next = await commitChanges(inEpoch1.state, {});
    expect((await postCommit(alice, id, 1, next)).status).toBe(201);
    const refused = await send(late.message, "pm-2");
    expect(refused.status).toBe(409);
    expect(refused.json).toEqual({ error: { code: "conflict", message: expect.any(String) }, epoch: 2 });
    // A repeat of what was stored before the commit is still the original; nothing else was stored.
    expect((await send(inEpoch1.message, "pm-1")).status).toBe(200);
    expect((await history(bob, id, "after_seq=0")).json.messages.map((m: any) => m.kind)).toEqual(["mls_commit", "encrypted", "mls_commit"]);
    const again = await encryptApplication(next.state, new TextEncoder().encode("made again in epoch 2"));
    expect((await send(again.message, "pm-2")).status).toBe(201);
  });
});

describe("mls_commit messages", () => {
  it("keep the conversation's seq order and never count as unread", async () => {
    const { alice, bob, id, state } = await aliceAndBob();
    const enc = (n: number) =>
      call("POST", `/conversations/${id}/messages`, { token: alice.token, body: { client_message_id: `enc-${n}`, kind: "encrypted", content: `c${n}` } });
    expect((await enc(1)).json.seq).toBe(2);
    const second = await commitChanges(state, {});
    expect((await postCommit(alice, id, 1, second)).json).toEqual({ epoch: 2, seq: 3 });
    expect((await enc(2)).json.seq).toBe(4);
    const messages = (await history(bob, id, "after_seq=0")).json.messages;
    expect(messages.map((m: any) => [m.seq, m.kind])).toEqual([
      [1, "mls_commit"],
      [2, "encrypted"],
      [3, "mls_commit"],
      [4, "encrypted"],
    ]);
    await eventually(async () => {
      const row = (await list(bob)).json.conversations.find((c: any) => c.conversation_id === id);
      expect(row.unread_count).toBe(2);
    });
    // A member who joins later sees nothing from before (section 17), so nothing of it is unread.
    const carol = await user("mc");
    expect((await call("POST", `/conversations/${id}/members`, { token: alice.token, body: { user_ids: [carol.user_id] } })).status).toBe(200);
    await eventually(async () => {
      const row = (await list(carol)).json.conversations.find((c: any) => c.conversation_id === id);
      expect(row.unread_count).toBe(0);
    });
  });
});

export type { DeviceKeyPackage };
