/**
 * Call signalling (CONTRACT.md section 11) through the conversation object: relay rules,
 * rings on device sockets, answered_elsewhere, the miss from the alarm (2 s here, set by
 * CALL_RING_TIMEOUT_SECONDS in vitest.config.ts; 45 s by default) and the one call event.
 */
import { describe, expect, it } from "vitest";
import { call, group, openSocket, register, type Session } from "./helpers";

const login = async (s: Session & { handle: string }) => {
  const res = await call("POST", "/auth/login", { body: { handle: s.handle, password: "correct horse" } });
  return { ...res.json, handle: s.handle } as Session & { handle: string };
};
const conv = async (s: Session, id: string) => (await openSocket(`/conversations/${id}/ws`, s.token)).socket!;
const device = async (s: Session) => (await openSocket("/sync", s.token)).socket!;
const callEvents = async (s: Session, id: string) =>
  (await call("GET", `/conversations/${id}/messages`, { token: s.token })).json.messages.filter((m: any) => m.kind === "call");

describe("call signalling", () => {
  it("ring reaches the others' conversation and device sockets; accept stops the callee's other devices; hangup stores one call event", async () => {
    const [alice, bob] = await Promise.all([register(), register()]);
    const bob2 = await login(bob);
    const id = await group(alice, [bob]);
    const [ca, cb] = await Promise.all([conv(alice, id), conv(bob, id)]);
    const db2 = await device(bob2); // bob's phone: only its device socket
    const da = await device(alice);

    ca.send({ type: "call", call_id: "c1", action: "ring", payload: { video: true } });
    const ring = await cb.waitFor((f) => f.type === "call" && f.action === "ring");
    // relayed unchanged but for the sender's ids
    expect(ring).toEqual({ type: "call", call_id: "c1", action: "ring", from_user_id: alice.user_id, from_device_id: alice.device_id, payload: { video: true } });
    const deviceRing = await db2.waitFor((f) => f.type === "call" && f.action === "ring");
    expect(deviceRing.cursor).toBeUndefined(); // ephemeral
    expect(deviceRing.conversation_id).toBe(id);

    cb.send({ type: "call", call_id: "c1", action: "accept" });
    expect(await ca.waitFor((f) => f.type === "call" && f.action === "accept")).toMatchObject({ from_device_id: bob.device_id });
    await db2.waitFor((f) => f.type === "call" && f.action === "answered_elsewhere" && f.call_id === "c1");

    ca.send({ type: "call", call_id: "c1", action: "offer", to_device_id: bob.device_id, payload: { type: "offer", sdp: "v=0" } });
    expect(await cb.waitFor((f) => f.action === "offer")).toMatchObject({ payload: { type: "offer", sdp: "v=0" }, to_device_id: bob.device_id });
    cb.send({ type: "call", call_id: "c1", action: "hangup", to_device_id: alice.device_id });
    await ca.waitFor((f) => f.action === "hangup");
    const stored = await ca.waitFor((f) => f.type === "message" && f.message.kind === "call");
    expect(JSON.parse(stored.message.content)).toMatchObject({ call_id: "c1", outcome: "completed", answered_at: expect.any(Number) });
    // a second hangup stores nothing more
    ca.send({ type: "call", call_id: "c1", action: "hangup" });
    await new Promise((r) => setTimeout(r, 300));
    expect(await callEvents(alice, id)).toHaveLength(1);
    // the device socket never sees a ring again on reconnect: it was not logged
    expect(da.frames.some((f) => f.type === "call" && f.action === "ring")).toBe(false);
    for (const s of [ca, cb, db2, da]) s.ws.close();
  });

  it("a ring nobody accepts ends as missed for everyone, from the alarm", async () => {
    const [alice, bob] = await Promise.all([register(), register()]);
    const id = await group(alice, [bob]);
    const [ca, db] = await Promise.all([conv(alice, id), device(bob)]);
    ca.send({ type: "call", call_id: "m1", action: "ring" });
    await db.waitFor((f) => f.action === "ring");
    ca.ws.close(); // nobody left on the conversation: the alarm still fires
    await db.waitFor((f) => f.type === "call" && f.action === "missed" && f.call_id === "m1", 8_000);
    await db.waitFor((f) => f.type === "message" && f.message.kind === "call", 5_000);
    const [event] = await callEvents(alice, id);
    expect(JSON.parse(event.content)).toMatchObject({ call_id: "m1", outcome: "missed" });
    db.ws.close();
  });

  it("refuses oversized payloads, unknown target devices, non-callers' rings on a taken id, and answers to nothing", async () => {
    const [alice, bob, eve] = await Promise.all([register(), register(), register()]);
    const id = await group(alice, [bob]);
    const [ca, cb] = await Promise.all([conv(alice, id), conv(bob, id)]);
    ca.send({ type: "call", call_id: "r1", action: "offer", payload: { sdp: "x".repeat(17 * 1024) } });
    expect(await ca.waitFor((f) => f.type === "error")).toMatchObject({ code: "too_large" });
    ca.send({ type: "call", call_id: "r1", action: "offer", to_device_id: eve.device_id });
    expect(await ca.waitFor((f) => f.type === "error" && f.code === "not_found")).toBeTruthy();
    cb.send({ type: "call", call_id: "nothing", action: "accept" });
    expect(await cb.waitFor((f) => f.type === "error" && f.code === "not_found")).toBeTruthy();
    ca.send({ type: "call", call_id: "r2", action: "ring" });
    await cb.waitFor((f) => f.action === "ring");
    cb.send({ type: "call", call_id: "r2", action: "ring" });
    expect(await cb.waitFor((f) => f.type === "error" && f.code === "forbidden")).toBeTruthy();
    ca.send({ type: "call", call_id: "r3", action: "dial" });
    expect(await ca.waitFor((f) => f.type === "error" && f.code === "invalid_request")).toBeTruthy();
    // a non-member cannot even open the socket
    expect((await openSocket(`/conversations/${id}/ws`, eve.token)).status).toBe(403);
    ca.send({ type: "call", call_id: "r2", action: "hangup" });
    await cb.waitFor((f) => f.type === "message" && f.message.kind === "call");
    const [event] = await callEvents(alice, id);
    expect(JSON.parse(event.content).outcome).toBe("cancelled");
    for (const s of [ca, cb]) s.ws.close();
  });

  it("a direct call declined by the callee ends as declined", async () => {
    const [alice, bob] = await Promise.all([register(), register()]);
    const res = await call("POST", "/conversations", { token: alice.token, body: { type: "direct", peer: bob.user_id } });
    const id = res.json.conversation_id;
    const [ca, cb] = await Promise.all([conv(alice, id), conv(bob, id)]);
    ca.send({ type: "call", call_id: "d1", action: "ring" });
    await cb.waitFor((f) => f.action === "ring");
    cb.send({ type: "call", call_id: "d1", action: "decline" });
    await ca.waitFor((f) => f.action === "decline");
    const stored = await ca.waitFor((f) => f.type === "message" && f.message.kind === "call");
    expect(JSON.parse(stored.message.content).outcome).toBe("declined");
    for (const s of [ca, cb]) s.ws.close();
  });
});
