/**
 * GET /v1/sync/cursor (an extension): where a device that has never connected starts, so that
 * what is made for it before its first connect is replayed (without `since`, nothing is).
 */
import { describe, expect, it } from "vitest";
import { direct, eventually, expectError, list, user } from "./api-helpers";
import { call, openSocket, send } from "./helpers";

describe("GET /v1/sync/cursor", () => {
  it('is "0" for a new user, then the newest event; since=it replays only what came after', async () => {
    const a = await user("sc");
    const b = await user("sd");
    expect((await call("GET", "/sync/cursor", { token: a.token })).json).toEqual({ cursor: "0" });
    const conv = (await direct(a, b)).json.conversation_id;
    await send(b, conv, "before");
    // Once "before" is in a's log (the list is brought up to date in the same write), the cursor is past it.
    await eventually(async () => {
      const entry = (await list(a)).json.conversations.find((c: any) => c.conversation_id === conv);
      expect(entry?.last_message?.client_message_id).toBe("before");
    });
    const before = (await call("GET", "/sync/cursor", { token: a.token })).json.cursor as string;
    expect(before).not.toBe("0");
    await send(b, conv, "after");
    const opened = await openSocket(`/sync?since=${before}`, a.token);
    expect(opened.status).toBe(101);
    const socket = opened.socket!;
    const frame = await socket.waitFor((f) => f.type === "message");
    expect(frame.message.client_message_id).toBe("after");
    await new Promise((r) => setTimeout(r, 200));
    expect(socket.frames.filter((f) => f.type === "message").map((f) => f.message.client_message_id)).toEqual(["after"]);
    socket.ws.close();
  });

  it("needs a token", async () => {
    expectError(await call("GET", "/sync/cursor"), 401, "unauthorized");
  });
});
