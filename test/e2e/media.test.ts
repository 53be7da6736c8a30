/**
 * Media end to end (CONTRACT.md section 9) with the SDK (client/dist) against the real
 * server: a file sent in one request and one in parts arrive byte for byte (sha256) at the
 * other member, whose push says "media" and whose list shows the media message. The
 * server's limits are lowered so the parts path runs with a small file.
 */
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatClient, ChatError, MemoryStorage, type ChatMessage } from "../../client/dist/index.js";
import { PASSWORD, eventually, uniqueHandle } from "./client";
import { startPushService, type PushService } from "./push-service";
import { TestServer } from "./server";

const MiB = 1024 * 1024;
let server: TestServer;
let push: PushService;

beforeAll(async () => {
  [server, push] = await Promise.all([
    TestServer.start({ args: ["--var", `MAX_MEDIA_SINGLE_BYTES:${MiB}`, "--var", `MAX_MEDIA_BYTES:${20 * MiB}`, "--var", `MEDIA_PART_BYTES:${5 * MiB}`] }),
    startPushService(),
  ]);
});
afterAll(async () => {
  await Promise.all([server?.dispose(), push?.close()]);
});

const register = (prefix: string) => ChatClient.register({ baseUrl: server.baseUrl, handle: uniqueHandle(prefix), password: PASSWORD, storage: new MemoryStorage() });
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("media through the SDK", () => {
  it("sends a photo in one request and a video in parts; the other member gets the same bytes, a media push and list entry", async () => {
    const [alice, bob] = await Promise.all([register("ma"), register("mb")]);
    const chat = await alice.createDirect(bob.userId, { encrypted: false });
    const id = chat.conversation_id;
    // Bob is offline (no device socket) with a push subscription: the media message pushes.
    const sub = await fetch(`${server.baseUrl}/v1/push/subscriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${bob.getToken()}`, "content-type": "application/json" },
      body: JSON.stringify(push.newSubscription("/bob-media")),
    });
    expect(sub.status).toBe(201);

    const photo = new Uint8Array(randomBytes(300_000));
    const sent = await alice.sendMedia(id, new Blob([photo], { type: "image/png" }), { name: "cat.png", caption: "look" });
    expect(sent).toMatchObject({ kind: "media", seq: 1, media: { name: "cat.png", caption: "look", type: "image/png" } });
    expect(typeof sent.media_id).toBe("string");
    const pushed = await push.waitFor("/bob-media", 15_000);
    expect(pushed.payload).toEqual({ type: "message", conversation_id: id, seq: 1, kind: "media" });

    // Over the (lowered) one-request limit: in parts (5 MiB each), transparently.
    const video = new Uint8Array(randomBytes(11 * MiB + 7));
    const big = await alice.sendMedia(id, video, { contentType: "video/mp4" });
    expect(big).toMatchObject({ kind: "media", seq: 2 });

    // Live too: a third media message reaches Bob's open device socket.
    const seen: ChatMessage[] = [];
    bob.on("message", (m) => {
      if (m.conversation_id === id) seen.push(m);
    });
    await bob.connect();
    const third = await alice.sendMedia(id, new Uint8Array([1, 2, 3]), { contentType: "application/pdf", name: "a.pdf" });
    await eventually(() => (seen.some((m) => m.seq === third.seq) ? true : undefined), 15_000, "the live media message at bob");
    expect(seen.find((m) => m.seq === third.seq)).toMatchObject({ kind: "media", media_id: third.media_id, media: { name: "a.pdf", type: "application/pdf" } });
    expect((await bob.history(id)).map((m) => [m.seq, m.kind, m.media_id])).toEqual([
      [1, "media", sent.media_id],
      [2, "media", big.media_id],
      [3, "media", third.media_id],
    ]);
    const gotPhoto = await bob.fetchMedia(id, sent.media_id!);
    expect(gotPhoto.type).toBe("image/png");
    expect(sha256(new Uint8Array(await gotPhoto.arrayBuffer()))).toBe(sha256(photo));
    const gotVideo = await bob.fetchMedia(id, big.media_id!);
    expect(gotVideo.type).toBe("video/mp4");
    expect(sha256(new Uint8Array(await gotVideo.arrayBuffer()))).toBe(sha256(video));

    const list = await bob.listConversations();
    expect(list.conversations.find((c) => c.conversation_id === id)?.last_message).toMatchObject({ kind: "media", media_id: third.media_id, seq: 3 });
    expect(bob.mediaUrl(id, big.media_id!)).toBe(`${server.baseUrl}/v1/conversations/${id}/media/${big.media_id}`);

    // Over MAX_MEDIA_BYTES: refused before a byte is sent, and no message.
    const huge = new Blob([new Uint8Array(20 * MiB + 1)]);
    await expect(alice.sendMedia(id, huge)).rejects.toMatchObject({ code: "too_large" });
    expect((await alice.history(id)).map((m) => m.seq)).toEqual([1, 2, 3]);
    // Outsiders get no bytes.
    const eve = await register("me");
    await expect(eve.fetchMedia(id, sent.media_id!)).rejects.toBeInstanceOf(ChatError);
    await Promise.all([alice.close(), bob.close(), eve.close()]);
  });
});
