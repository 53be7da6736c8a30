/**
 * CONTRACT.md section 17 through the SDK (client/dist, as `npm run build:client` leaves it)
 * against the real server: `chat.privacy` round-trips the settings, `chat.blocks` blocks and
 * unblocks (the blocked user's send is refused with a ChatError "forbidden", the
 * conversation leaves the blocker's list and comes back), an `add_to_groups: "contacts"`
 * user cannot be put in a stranger's group, and `listConversations()` entries carry
 * `request` for the recipient of a direct conversation until they reply.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatClient, ChatError, MemoryStorage, type StatusChange } from "../../client/dist/index.js";
import { PASSWORD, eventually, uniqueHandle } from "./client";
import { TestServer } from "./server";

let server: TestServer;
const clients: ChatClient[] = [];

beforeAll(async () => {
  server = await TestServer.start();
});
afterAll(async () => {
  for (const c of clients) await c.close();
  await server?.dispose();
});

async function register(prefix: string): Promise<ChatClient> {
  const chat = await ChatClient.register({ baseUrl: server.baseUrl, handle: uniqueHandle(prefix), password: PASSWORD, storage: new MemoryStorage() });
  clients.push(chat);
  return chat;
}

/** The ChatError a promise rejects with (fails the test if it resolves). */
async function refusal(p: Promise<unknown>): Promise<ChatError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ChatError);
  return err as ChatError;
}

/** The caller's list entry for a conversation, or undefined when it is not listed. */
async function entry(chat: ChatClient, conversationId: string) {
  return (await chat.listConversations({ limit: 100 })).conversations.find((c) => c.conversation_id === conversationId);
}

describe("SDK privacy settings", () => {
  it("default to everyone, change field by field, and refuse a bad value as a ChatError", async () => {
    const a = await register("pa");
    expect(await a.privacy.get()).toEqual({ last_seen: "everyone", add_to_groups: "everyone" });
    expect(await a.privacy.set({ last_seen: "nobody" })).toEqual({ last_seen: "nobody", add_to_groups: "everyone" });
    expect(await a.privacy.set({ add_to_groups: "contacts" })).toEqual({ last_seen: "nobody", add_to_groups: "contacts" });
    expect(await a.privacy.get()).toEqual({ last_seen: "nobody", add_to_groups: "contacts" });

    const bad = await refusal(a.privacy.set({ last_seen: "friends" as never }));
    expect([bad.code, bad.status]).toEqual(["invalid_request", 400]);
    expect(await a.privacy.get()).toEqual({ last_seen: "nobody", add_to_groups: "contacts" });
  });

  it('add_to_groups "contacts": a stranger\'s group with them is refused 403, naming them', async () => {
    const [picky, stranger] = await Promise.all([register("pp"), register("ps")]);
    await picky.privacy.set({ add_to_groups: "contacts" });
    const err = await refusal(stranger.createGroup("no", [picky.userId], { encrypted: false }));
    expect([err.code, err.status]).toEqual(["forbidden", 403]);
    expect(err.message).toContain(picky.userId);

    const group = await stranger.createGroup("later", [], { encrypted: false });
    const add = await refusal(stranger.addMembers(group.conversation_id, [picky.userId]));
    expect([add.code, add.status]).toEqual(["forbidden", 403]);
  });
});

describe("SDK requests and blocks", () => {
  it("a stranger's direct conversation is a request for its recipient until they reply", async () => {
    const [stranger, recipient] = await Promise.all([register("rs"), register("rr")]);
    const { conversation_id: id } = await stranger.createDirect(recipient.userId, { encrypted: false });
    await stranger.sendText(id, "hello, you do not know me");

    expect((await eventually(() => entry(recipient, id), 10_000, "the recipient's entry"))!.request).toBe(true);
    expect((await entry(stranger, id))!.request).toBe(false);
    await stranger.sendText(id, "still there?");
    expect((await entry(recipient, id))!.request).toBe(true);

    await recipient.sendText(id, "hi");
    // The list follows the send through the recipient's inbox, a moment later at most.
    await eventually(async () => ((await entry(recipient, id))?.request === false ? true : undefined), 10_000, "the request to end");
  });

  it("a blocked user's send fails with ChatError forbidden; the conversation leaves the blocker's list; unblock undoes both", async () => {
    const [blocked, blocker] = await Promise.all([register("bd"), register("br")]);
    const { conversation_id: id } = await blocked.createDirect(blocker.userId, { encrypted: false });
    await blocked.sendText(id, "before the block");
    await eventually(() => entry(blocker, id), 10_000, "the blocker's entry");

    await blocker.blocks.add(blocked.userId);
    await blocker.blocks.add(blocked.userId); // again: harmless
    expect((await blocker.blocks.list()).map((b) => b.user_id)).toEqual([blocked.userId]);
    expect(typeof (await blocker.blocks.list())[0]!.created_at).toBe("number");
    await eventually(async () => ((await entry(blocker, id)) === undefined ? true : undefined), 10_000, "the conversation to leave the blocker's list");

    // The send is refused for good: the promise rejects, the outbox drops it and says "failed".
    const statuses: StatusChange[] = [];
    blocked.on("status", (s) => statuses.push(s));
    const err = await refusal(blocked.sendText(id, "after the block"));
    expect([err.code, err.status]).toEqual(["forbidden", 403]);
    expect(err.message).toMatch(/blocked/);
    expect(err.transient).toBe(false);
    expect(statuses.map((s) => s.status)).toEqual(["pending", "failed"]);
    expect(statuses[1]!.error?.code).toBe("forbidden");
    expect(blocked.pending(id)).toEqual([]);
    // Nor can the blocked user put the blocker in a group, or see their presence.
    expect((await refusal(blocked.createGroup("g", [blocker.userId], { encrypted: false }))).status).toBe(403);
    expect((await blocked.presence(blocker.userId)).status).toBe("unknown");

    // Blocking oneself or nobody is refused.
    expect((await refusal(blocker.blocks.add(blocker.userId))).code).toBe("invalid_request");
    expect((await refusal(blocker.blocks.add("u_nobodyatall"))).code).toBe("not_found");

    await blocker.blocks.remove(blocked.userId);
    await blocker.blocks.remove(blocked.userId); // not blocked any more: still 204
    expect(await blocker.blocks.list()).toEqual([]);
    await eventually(() => entry(blocker, id), 10_000, "the conversation back in the blocker's list");
    const sent = await blocked.sendText(id, "after the unblock");
    expect(sent.text).toBe("after the unblock");
    expect((await blocker.history(id)).map((m) => m.text)).toEqual(["before the block", "after the unblock"]);
  });
});
