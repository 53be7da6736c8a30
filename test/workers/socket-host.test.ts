/**
 * objects/socket-host.ts: a frame whose handler throws (here, the RPC to the sender's inbox
 * for a send token fails) is answered with an `internal` error frame naming the frame's
 * ref, and the socket stays usable; before, the send was left unanswered.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Conversation } from "../../objects/conversation";
import { group, openSocket, register } from "./helpers";

const conversationStub = (id: string) => env.CONVERSATION.get(env.CONVERSATION.idFromName(id));

/** Makes every inbox RPC of this conversation instance fail, until the object restarts. */
async function breakInboxes(conversationId: string) {
  await runInDurableObject<Conversation, void>(conversationStub(conversationId), (instance) => {
    const inside = instance as unknown as { env: Env };
    const failing = () => Promise.reject(new Error("inbox unreachable"));
    const unreachable = { get: () => ({ leaseSendTokens: failing }), idFromName: () => ({}) };
    inside.env = { ...inside.env, INBOX: unreachable as unknown as Env["INBOX"] };
  });
}

describe("socket host", () => {
  it("answers a frame whose handler throws with an internal error frame carrying its ref", async () => {
    const [a, b] = await Promise.all([register(), register()]);
    const id = await group(a, [b]);
    const { socket } = await openSocket(`/conversations/${id}/ws`, a.token);
    if (!socket) throw new Error("no socket");
    await breakInboxes(id);

    socket.send({ type: "send", client_message_id: "cm-broken", kind: "text", content: "hello" });
    const error = await socket.waitFor((f) => f.type === "error");
    expect(error).toEqual({ type: "error", code: "internal", message: expect.any(String), ref: "cm-broken" });
    expect(socket.frames.some((f) => f.type === "sent" || f.type === "message")).toBe(false);

    // The socket stays open and is still answered.
    socket.send('{"type": "ping"}');
    await socket.waitFor((f) => f.type === "pong");
    expect(socket.closed).toBeNull();
  });
});
