/**
 * Issue 11 finding 2, CONTRACT.md section 17: contacts and requests, privacy settings
 * (last_seen, add_to_groups), blocks, and history from the moment a member (last) joined.
 * Before it, anyone could see anyone's presence by opening a direct conversation with them,
 * put anyone into any number of groups (and back right after they left), and a member
 * added later read everything said before.
 */
import { describe, expect, it } from "vitest";
import { direct, eventually, expectError, history, list, user, type User } from "./api-helpers";
import { call, group, openSocket, send } from "./helpers";

const getPrivacy = (s: User) => call("GET", "/me/privacy", { token: s.token });
const putPrivacy = (s: User, body: unknown) => call("PUT", "/me/privacy", { token: s.token, body });
const block = (s: User, target: User | string) =>
  call("POST", "/blocks", { token: s.token, body: { user_id: typeof target === "string" ? target : target.user_id } });
const unblock = (s: User, target: User) => call("DELETE", `/blocks/${target.user_id}`, { token: s.token });
const presenceOf = (viewer: User, subject: User) => call("GET", `/users/${subject.user_id}/presence`, { token: viewer.token });
const createGroup = (s: User, members: User[], extra: Record<string, unknown> = {}) =>
  call("POST", "/conversations", { token: s.token, body: { type: "group", name: "g", members: members.map((m) => m.user_id), ...extra } });
const addMembers = (s: User, id: string, members: User[]) =>
  call("POST", `/conversations/${id}/members`, { token: s.token, body: { user_ids: members.map((m) => m.user_id) } });
const removeMember = (s: User, id: string, target: User) => call("DELETE", `/conversations/${id}/members/${target.user_id}`, { token: s.token });
const entry = async (s: User, id: string) => (await list(s)).json.conversations.find((c: any) => c.conversation_id === id);
const contents = async (s: User, id: string, query = "") => ((await history(s, id, query)).json.messages as any[]).map((m) => m.content);

/** A direct conversation in which `a` has sent, so that `b` is `a`'s contact. */
async function makeContact(a: User, b: User): Promise<string> {
  const id = (await direct(a, b)).json.conversation_id as string;
  expect((await send(a, id, `hi-${crypto.randomUUID()}`)).status).toBe(201);
  return id;
}

describe("privacy settings", () => {
  it("default to everyone, change field by field, and refuse bad values changing nothing", async () => {
    const a = await user();
    expect((await getPrivacy(a)).json).toEqual({ last_seen: "everyone", add_to_groups: "everyone" });
    const put = await putPrivacy(a, { last_seen: "contacts" });
    expect(put.status).toBe(200);
    expect(put.json).toEqual({ last_seen: "contacts", add_to_groups: "everyone" });
    expect((await putPrivacy(a, { add_to_groups: "contacts" })).json).toEqual({ last_seen: "contacts", add_to_groups: "contacts" });
    expectError(await putPrivacy(a, { last_seen: "friends" }), 400, "invalid_request");
    expectError(await putPrivacy(a, { add_to_groups: "nobody" }), 400, "invalid_request");
    expect((await getPrivacy(a)).json).toEqual({ last_seen: "contacts", add_to_groups: "contacts" });
    expectError(await call("GET", "/me/privacy"), 401, "unauthorized");
  });
});

describe("add_to_groups", () => {
  it('"contacts": a non-contact can neither create a group with them nor add them (403); a contact can', async () => {
    const target = await user();
    const stranger = await user();
    const friend = await user();
    await putPrivacy(target, { add_to_groups: "contacts" });
    expectError(await createGroup(stranger, [target]), 403, "forbidden");
    const strangers = await group(stranger, []);
    expectError(await addMembers(stranger, strangers, [target]), 403, "forbidden");
    expect((await call("GET", `/conversations/${strangers}`, { token: stranger.token })).json.members).toHaveLength(1);

    // The friend opening a direct conversation is not enough: the target must have sent there.
    const dm = (await direct(friend, target)).json.conversation_id;
    expect((await send(friend, dm, "hello")).status).toBe(201);
    expectError(await createGroup(friend, [target]), 403, "forbidden");
    expect((await send(target, dm, "hello back")).status).toBe(201);
    expect((await createGroup(friend, [target])).status).toBe(201);
    const friends = await group(friend, []);
    expect((await addMembers(friend, friends, [target])).status).toBe(200);
  });

  it("stops a stranger adding someone back right after they leave", async () => {
    const target = await user();
    const stranger = await user();
    const id = await group(stranger, [target]);
    expect((await removeMember(target, id, target)).status).toBe(204);
    await putPrivacy(target, { add_to_groups: "contacts" });
    expectError(await addMembers(stranger, id, [target]), 403, "forbidden");
  });
});

describe("last_seen", () => {
  it('"nobody" and "contacts" hide presence over HTTP (status unknown) and on conversation sockets (no frames)', async () => {
    const subject = await user();
    const contact = await user();
    const other = await user();
    await makeContact(subject, contact);
    const id = await group(subject, [contact, other]);
    const device = (await openSocket("/sync", subject.token)).socket!;

    expect((await presenceOf(other, subject)).json).toEqual({ status: "online", last_seen: null });
    await putPrivacy(subject, { last_seen: "contacts" });
    expect((await presenceOf(other, subject)).json).toEqual({ status: "unknown", last_seen: null });
    expect((await presenceOf(contact, subject)).json).toEqual({ status: "online", last_seen: null });
    expect((await presenceOf(subject, subject)).json.status).toBe("online");

    const ofOther = (await openSocket(`/conversations/${id}/ws`, other.token)).socket!;
    const ofContact = (await openSocket(`/conversations/${id}/ws`, contact.token)).socket!;
    await ofContact.waitFor((f) => f.type === "presence" && f.user_id === subject.user_id && f.status === "online");
    // The other's socket hears of the contact (default settings), never of the subject.
    await ofOther.waitFor((f) => f.type === "presence" && f.user_id === contact.user_id);
    await putPrivacy(subject, { last_seen: "nobody" });
    await ofContact.waitFor((f) => f.type === "presence" && f.user_id === subject.user_id && f.status === "unknown");
    device.ws.close(1000);
    await device.waitClosed();
    // Offline comes 5 s after the close; nobody may see it, and a socket opened now is told nothing of the subject.
    await new Promise((r) => setTimeout(r, 6_500));
    const late = (await openSocket(`/conversations/${id}/ws`, other.token)).socket!;
    await late.waitFor((f) => f.type === "presence" && f.user_id === contact.user_id);
    expect((await presenceOf(contact, subject)).json).toEqual({ status: "unknown", last_seen: null });
    for (const s of [ofOther, late]) expect(s.frames.filter((f) => f.type === "presence" && f.user_id === subject.user_id)).toEqual([]);
    expect(ofContact.frames.filter((f) => f.type === "presence" && f.user_id === subject.user_id).map((f) => f.status)).toEqual(["online", "unknown"]);

    // Back to everyone: the watching sockets are told at once.
    await putPrivacy(subject, { last_seen: "everyone" });
    await ofOther.waitFor((f) => f.type === "presence" && f.user_id === subject.user_id && f.status === "offline");
    for (const s of [ofOther, ofContact, late]) s.ws.close(1000);
  }, 30_000);

  it('"contacts" takes effect for a new contact as soon as the subject first sends to them', async () => {
    const subject = await user();
    const viewer = await user();
    await putPrivacy(subject, { last_seen: "contacts" });
    const dm = (await direct(viewer, subject)).json.conversation_id;
    expect((await presenceOf(viewer, subject)).json.status).toBe("unknown");
    expect((await send(subject, dm, "hi")).status).toBe(201);
    expect((await presenceOf(viewer, subject)).json).toEqual({ status: "offline", last_seen: null });
  });
});

describe("contacts and requests", () => {
  it("a direct conversation a non-contact started is a request for its recipient until they send in it", async () => {
    const a = await user();
    const b = await user();
    const id = (await direct(a, b)).json.conversation_id;
    await send(a, id, "hello");
    await eventually(async () => {
      expect(await entry(b, id)).toMatchObject({ request: true });
      expect(await entry(a, id)).toMatchObject({ request: false });
    });
    await send(b, id, "hi");
    await eventually(async () => expect(await entry(b, id)).toMatchObject({ request: false }));
    const g = await group(a, [b]);
    await eventually(async () => expect(await entry(b, g)).toMatchObject({ request: false }));
  });
});

describe("blocks", () => {
  it("refuse the blocked user's messages (HTTP and socket), drop the conversation from the blocker's list, and undo", async () => {
    const blocker = await user();
    const blocked = await user();
    const id = (await direct(blocked, blocker)).json.conversation_id;
    await send(blocker, id, "before");
    await eventually(async () => expect(await entry(blocker, id)).toBeTruthy());

    expect((await block(blocker, blocked)).status).toBe(204);
    expect((await block(blocker, blocked)).status).toBe(204);
    expect((await call("GET", "/blocks", { token: blocker.token })).json).toEqual({
      blocks: [{ user_id: blocked.user_id, created_at: expect.any(Number) }],
    });
    expectError(await send(blocked, id, "refused"), 403, "forbidden");
    const ws = (await openSocket(`/conversations/${id}/ws`, blocked.token)).socket!;
    ws.send({ type: "send", client_message_id: "ws-refused", kind: "text", content: "x" });
    expect(await ws.waitFor((f) => f.type === "error")).toMatchObject({ code: "forbidden", ref: "ws-refused" });
    ws.ws.close(1000);
    await eventually(async () => expect(await entry(blocker, id)).toBeUndefined());
    expect(await contents(blocker, id)).toEqual(["before"]);
    // The blocker may still write; the blocked user's list keeps the conversation.
    expect((await send(blocker, id, "from the blocker")).status).toBe(201);
    expect(await entry(blocked, id)).toBeTruthy();

    expect((await unblock(blocker, blocked)).status).toBe(204);
    expect((await call("GET", "/blocks", { token: blocker.token })).json).toEqual({ blocks: [] });
    expect((await send(blocked, id, "again")).status).toBe(201);
    await eventually(async () => expect(await entry(blocker, id)).toMatchObject({ conversation_id: id }));
  });

  it("hold for a direct conversation created after the block, and stop group adds and presence", async () => {
    const blocker = await user();
    const blocked = await user();
    await makeContact(blocker, blocked);
    expect((await presenceOf(blocked, blocker)).json.status).toBe("offline");
    expect((await block(blocker, blocked)).status).toBe(204);
    expect((await presenceOf(blocked, blocker)).json).toEqual({ status: "unknown", last_seen: null });
    expect((await presenceOf(blocker, blocked)).json.status).toBe("offline");
    expectError(await createGroup(blocked, [blocker]), 403, "forbidden");
    const g = await group(blocked, []);
    expectError(await addMembers(blocked, g, [blocker]), 403, "forbidden");
    // A group both are in (made by someone else) still takes the blocked user's messages: they are to the group.
    const third = await user();
    const shared = await group(third, [blocker, blocked]);
    expect((await send(blocked, shared, "to the group")).status).toBe(201);
    expect(await contents(blocker, shared)).toEqual(["to the group"]);
    // ...but its sockets do not show the blocked user the blocker's presence.
    const ws = (await openSocket(`/conversations/${shared}/ws`, blocked.token)).socket!;
    const mine = (await openSocket(`/conversations/${shared}/ws`, third.token)).socket!;
    await ws.waitFor((f) => f.type === "presence" && f.user_id === third.user_id);
    await mine.waitFor((f) => f.type === "presence" && f.user_id === blocker.user_id);
    expect(ws.frames.filter((f) => f.type === "presence" && f.user_id === blocker.user_id)).toEqual([]);
    ws.ws.close(1000);
    mine.ws.close(1000);

    const late = await user();
    expect((await block(late, blocked)).status).toBe(204);
    const id = (await direct(blocked, late)).json.conversation_id;
    expectError(await send(blocked, id, "refused"), 403, "forbidden");
    expect((await send(late, id, "mine")).status).toBe(201);
    // Both inboxes are fed in the same round; the blocker's had the conversation hidden from its first event on.
    await eventually(async () => expect(await entry(blocked, id)).toMatchObject({ last_message: { content: "mine" } }));
    expect(await entry(late, id)).toBeUndefined();
  });

  it("refuse oneself (400) and unknown users (404)", async () => {
    const a = await user();
    expectError(await block(a, a), 400, "invalid_request");
    expectError(await block(a, "u_nobody"), 404, "not_found");
    expectError(await call("POST", "/blocks", { token: a.token, body: {} }), 400, "invalid_request");
    expectError(await call("GET", "/blocks"), 401, "unauthorized");
  });
});

describe("history from the moment a member (last) joined", () => {
  it("a member added later sees nothing sent before, in history, the list and device-socket replay", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const id = await group(a, [b]);
    await send(a, id, "m1");
    await send(b, id, "m2");
    expect((await addMembers(a, id, [c])).status).toBe(200);
    expect((await call("GET", `/conversations/${id}`, { token: c.token })).json.history).toBe("since_join");
    expect(await contents(c, id)).toEqual([]);
    expect(await contents(c, id, "after_seq=0")).toEqual([]);
    expect(await contents(c, id, "before_seq=3")).toEqual([]);
    await eventually(async () => expect(await entry(c, id)).toMatchObject({ last_message: null, unread_count: 0 }));
    await send(a, id, "m3");
    expect(await contents(c, id)).toEqual(["m3"]);
    expect(await contents(c, id, "after_seq=0")).toEqual(["m3"]);
    expect((await history(c, id, "after_seq=0")).json.next_after_seq).toBeNull();
    await eventually(async () => expect(await entry(c, id)).toMatchObject({ last_message: { content: "m3" }, unread_count: 1 }));
    const device = (await openSocket("/sync?since=0", c.token)).socket!;
    await device.waitFor((f) => f.type === "message" && f.message.content === "m3");
    expect(device.frames.filter((f) => f.type === "message").map((f) => f.message.content)).toEqual(["m3"]);
    device.ws.close(1000);
    // The members who were there see everything.
    expect(await contents(b, id)).toEqual(["m1", "m2", "m3"]);
  });

  it("a member who left and came back sees nothing from before they came back", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    await send(a, id, "while-in");
    expect((await removeMember(a, id, b)).status).toBe(204);
    await send(a, id, "while-out");
    expect((await addMembers(a, id, [b])).status).toBe(200);
    await send(a, id, "back");
    expect(await contents(b, id)).toEqual(["back"]);
    expect(await contents(b, id, "before_seq=3")).toEqual([]);
  });

  it('a group created with "history":"shared" shows new members its earlier messages', async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const created = await createGroup(a, [b], { history: "shared" });
    expect(created.json.history).toBe("shared");
    const id = created.json.conversation_id;
    await send(a, id, "m1");
    expect((await addMembers(a, id, [c])).status).toBe(200);
    expect(await contents(c, id)).toEqual(["m1"]);
    expectError(await createGroup(a, [b], { history: "everything" }), 400, "invalid_request");
  });
});
