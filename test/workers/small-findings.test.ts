/**
 * Issue 11, finding 8: display names without control or bidi characters, JSON bodies only
 * as application/json, `cache-control: no-store`, a loud warning for an empty
 * ALLOWED_ORIGINS outside local runs, and single-use socket tickets instead of ?token=.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { originsWarning } from "../../worker/app";
import { ticketStub } from "../../worker/lib/tickets";
import { expectError, freshHandle, rawFetch, user } from "./api-helpers";
import { call, FrameCollector, group } from "./helpers";

const registerAs = (display_name: string) =>
  call("POST", "/auth/register", { body: { handle: freshHandle("dn"), password: "correct horse", display_name } });

describe("names people see", () => {
  it("refuse control characters and bidi overrides, keep ZWJ sequences", async () => {
    for (const bad of ["evil\u202Egnp.exe", "nul\u0000byte", "bell\u0007", "iso\u2066late\u2069", "mark\u200F", "c1\u0085", "del\u007F", "line\nbreak"]) {
      expectError(await registerAs(bad), 400, "invalid_request");
    }
    for (const fine of ["Zoë", "👩\u200D👩\u200D👧", "عربي", "a b"]) {
      const res = await registerAs(fine);
      expect(res.status, JSON.stringify(fine)).toBe(201);
      const me = await call("GET", "/me", { token: res.json.token });
      expect(me.json.display_name).toBe(fine);
    }
    const a = await user("dn");
    expectError(await call("POST", "/auth/login", { body: { handle: a.handle, password: "correct horse", device_name: "phone\u202E" } }), 400, "invalid_request");
    expectError(await call("POST", "/conversations", { token: a.token, body: { type: "group", name: "g\u202Eroup", members: [] } }), 400, "invalid_request");
  });
});

describe("JSON bodies", () => {
  it("are taken only as application/json", async () => {
    const body = JSON.stringify({ handle: freshHandle("ct"), password: "correct horse" });
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"]) {
      const res = await rawFetch("/auth/register", { method: "POST", body, headers: { "content-type": type } });
      expect(res.status, type).toBe(400);
      expect(((await res.json()) as any).error.code).toBe("invalid_request");
    }
    const none = await rawFetch("/auth/register", { method: "POST", body: new TextEncoder().encode(body) });
    expect(none.status).toBe(400);
    const ok = await rawFetch("/auth/register", { method: "POST", body, headers: { "content-type": "Application/JSON; charset=utf-8" } });
    expect(ok.status).toBe(201);
  });
});

describe("cache-control", () => {
  it("is no-store on API answers, errors included", async () => {
    const a = await user("cc");
    for (const res of [
      await call("GET", "/me", { token: a.token }),
      await call("GET", "/me"),
      await call("GET", "/no/such/route"),
      await call("GET", "/health"),
      await call("POST", "/auth/login", { body: { handle: a.handle, password: "wrong one!" } }),
    ]) {
      expect(res.headers.get("cache-control")).toBe("no-store");
    }
  });
});

describe("ALLOWED_ORIGINS", () => {
  it("empty is warned about loudly, except on the local server", () => {
    expect(originsWarning({ ALLOWED_ORIGINS: "" })).toMatch(/WARNING: ALLOWED_ORIGINS is empty/);
    expect(originsWarning({})).toMatch(/ALLOWED_ORIGINS/);
    expect(originsWarning({ ALLOWED_ORIGINS: "", PUSH_ALLOW_LOOPBACK_HTTP: "true" })).toBeNull();
    expect(originsWarning({ ALLOWED_ORIGINS: "https://app.example" })).toBeNull();
  });
});

describe("socket tickets", () => {
  const upgrade = (path: string) => rawFetch(path, { headers: { upgrade: "websocket" } });
  const ticket = async (token?: string) => call("POST", "/sync/ticket", { token });

  it("open either socket once, within 60 s, standing for the calling device", async () => {
    const [a, b] = await Promise.all([user("tk"), user("tk")]);
    const id = await group(a, [b]);
    const issued = await ticket(a.token);
    expect(issued.status).toBe(200);
    expect(issued.json.ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(issued.json.expires_at).toBeGreaterThan(Date.now() + 50_000);
    expect(issued.json.expires_at).toBeLessThanOrEqual(Date.now() + 60_000);

    const opened = await upgrade(`/sync?ticket=${issued.json.ticket}`);
    expect(opened.status).toBe(101);
    opened.webSocket!.accept();
    const device = new FrameCollector(opened.webSocket!);
    expectError(await call("GET", `/sync?ticket=${issued.json.ticket}`, { headers: { upgrade: "websocket" } }), 401, "unauthorized");

    const forConversation = (await ticket(a.token)).json.ticket;
    const conv = await upgrade(`/conversations/${id}/ws?ticket=${forConversation}`);
    expect(conv.status).toBe(101);
    conv.webSocket!.accept();
    const socket = new FrameCollector(conv.webSocket!);
    socket.send({ type: "send", client_message_id: "by-ticket", kind: "text", content: "hi" });
    const sent = await socket.waitFor((f) => f.type === "sent");
    expect(sent.message.sender_device_id).toBe(a.device_id);
    await device.waitFor((f) => f.type === "message" && f.message.client_message_id === "by-ticket");
    expect((await upgrade(`/conversations/${id}/ws?ticket=${forConversation}`)).status).toBe(401);
  });

  it("are single use even when redeemed at the same moment", async () => {
    const a = await user("tk");
    const t = (await ticket(a.token)).json.ticket;
    const results = await Promise.all(Array.from({ length: 6 }, () => upgrade(`/sync?ticket=${t}`)));
    expect(results.map((r) => r.status).sort()).toEqual([101, 401, 401, 401, 401, 401]);
    for (const r of results) if (r.webSocket) (r.webSocket.accept(), r.webSocket.close(1000));
  });

  it("need a bearer token, and are refused unknown, malformed or expired", async () => {
    const a = await user("tk");
    expectError(await ticket(), 401, "unauthorized");
    expect((await upgrade(`/sync?ticket=${"A".repeat(43)}`)).status).toBe(401);
    expect((await upgrade("/sync?ticket=short")).status).toBe(401);
    const stale = "B".repeat(21) + crypto.randomUUID().replaceAll("-", "").slice(0, 22);
    await ticketStub(env, stale).issue({ userId: a.user_id, deviceId: a.device_id, exp: Math.floor(Date.now() / 1000) + 3600 }, Date.now() - 1);
    expect((await upgrade(`/sync?ticket=${stale}`)).status).toBe(401);
    // A revoked device's ticket is refused like its token.
    const revoked = (await ticket(a.token)).json.ticket;
    expect((await call("DELETE", `/devices/${a.device_id}`, { token: a.token })).status).toBe(204);
    expect((await upgrade(`/sync?ticket=${revoked}`)).status).toBe(401);
  });
});
