/**
 * Issue 11, finding 4: a socket must not outlive its token. At `exp` the object's alarm
 * closes it with 4401 (a `{"type":"ping"}` is answered without waking the object, so the
 * socket has to be gone by then), and no event is sent to it past `exp`.
 */
import { describe, expect, it } from "vitest";
import { issueToken } from "../../worker/lib/token";
import { TEST_SECRET, user } from "./api-helpers";
import { group, openSocket, send } from "./helpers";

describe("sockets past their token's exp", () => {
  it("are closed with 4401 at exp, device and conversation sockets alike, and get nothing more", async () => {
    const [a, b] = await Promise.all([user("exp"), user("exp")]);
    const id = await group(a, [b]);
    // exp is whole seconds: this token lapses 1 to 2 s from now.
    const shortLived = await issueToken(TEST_SECRET, b.user_id, b.device_id, 2);
    const device = (await openSocket("/sync", shortLived)).socket!;
    const conversation = (await openSocket(`/conversations/${id}/ws`, shortLived)).socket!;
    // A long-lived socket of the same user stays open: only the expired token's sockets close.
    const other = (await openSocket("/sync", b.token)).socket!;

    device.send({ type: "ping" });
    conversation.send({ type: "ping" });
    await device.waitFor((f) => f.type === "pong");
    await conversation.waitFor((f) => f.type === "pong");

    expect((await device.waitClosed(4000)).code).toBe(4401);
    expect((await conversation.waitClosed(4000)).code).toBe(4401);
    const framesAtClose = device.frames.length + conversation.frames.length;

    expect((await send(a, id, "after-exp")).status).toBe(201);
    await other.waitFor((f) => f.type === "message" && f.message.client_message_id === "after-exp");
    expect(device.frames.length + conversation.frames.length).toBe(framesAtClose);
    expect(other.closed).toBeNull();
  });
});
