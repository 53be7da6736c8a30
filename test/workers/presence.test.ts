/** Presence (CONTRACT.md section 7): transitions, flapping, laziness, hibernation. */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, group, openSocket, register } from "./helpers";

const inboxStub = (userId: string) => env.INBOX.get(env.INBOX.idFromName(userId));
const watchers = (userId: string) =>
  runInDurableObject(inboxStub(userId), (_, state) =>
    state.storage.sql
      .exec<{ conversation_id: string }>("SELECT conversation_id FROM watchers")
      .toArray()
      .map((r) => r.conversation_id),
  );

describe("presence", () => {
  it("goes online with a device socket and offline 5 s after the last one closes, without flapping", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    const watcher = (await openSocket(`/conversations/${id}/ws`, b.token)).socket!;
    const initial = await watcher.waitFor((f) => f.type === "presence" && f.user_id === a.user_id);
    expect(initial).toMatchObject({ status: "offline", last_seen: null });

    const first = (await openSocket(`/sync`, a.token)).socket!;
    await watcher.waitFor((f) => f.type === "presence" && f.user_id === a.user_id && f.status === "online");

    // A reconnect within the grace period: no offline/online pair.
    first.ws.close(1000);
    await first.waitClosed();
    await new Promise((r) => setTimeout(r, 500));
    const second = (await openSocket(`/sync`, a.token)).socket!;
    await new Promise((r) => setTimeout(r, 5_500));
    const aFrames = () => watcher.frames.filter((f) => f.type === "presence" && f.user_id === a.user_id);
    expect(aFrames().map((f) => f.status)).toEqual(["offline", "online"]);

    // The object may hibernate during the grace period: the alarm still declares offline.
    second.ws.close(1000);
    await second.waitClosed();
    const closedAt = Date.now();
    await evictDurableObject(inboxStub(a.user_id));
    const offline = await watcher.waitFor((f) => f.type === "presence" && f.user_id === a.user_id && f.status === "offline" && f.last_seen, 10_000);
    expect(offline.last_seen).toBeGreaterThan(closedAt - 1_000);
    expect(Date.now() - closedAt).toBeGreaterThan(4_000);
    expect(aFrames().map((f) => f.status)).toEqual(["offline", "online", "offline"]);

    const res = await call("GET", `/users/${a.user_id}/presence`, { token: b.token });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: "offline", last_seen: offline.last_seen });
  }, 30_000);

  it("is lazy: only conversations with an open socket watch a user", async () => {
    const a = await register();
    const b = await register();
    const open = await group(a, [b], "open");
    const closed = await group(a, [b], "closed");
    const watcher = (await openSocket(`/conversations/${open}/ws`, b.token)).socket!;
    await watcher.waitFor((f) => f.type === "presence" && f.user_id === a.user_id);
    expect(await watchers(a.user_id)).toEqual([open]);
    expect(await watchers(a.user_id)).not.toContain(closed);

    // Once the conversation has no open socket, the next change drops it.
    watcher.ws.close(1000);
    await watcher.waitClosed();
    const device = (await openSocket(`/sync`, a.token)).socket!;
    await expect.poll(() => watchers(a.user_id)).toEqual([]);
    device.ws.close(1000);
  });

  it("GET /users/:id/presence is for users who share a conversation", async () => {
    const a = await register();
    const b = await register();
    const stranger = await register();
    await group(a, [b]);
    expect((await call("GET", `/users/${b.user_id}/presence`, { token: a.token })).json).toEqual({ status: "offline", last_seen: null });
    const denied = await call("GET", `/users/${b.user_id}/presence`, { token: stranger.token });
    expect(denied.status).toBe(403);
    expect(denied.json.error.code).toBe("forbidden");
    expect((await call("GET", `/users/u_nobody/presence`, { token: a.token })).status).toBe(404);
    expect((await call("GET", `/users/${a.user_id}/presence`, { token: a.token })).status).toBe(200);
  });
});
