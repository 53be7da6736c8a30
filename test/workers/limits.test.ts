/** Abuse limits (CONTRACT.md section 2): the per-user send bucket, socket caps, the Origin allow-list. */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BASE, call, group, openSocket, register, send } from "./helpers";

describe("send rate limit", () => {
  it("is one bucket of 100 per user across HTTP and sockets, and a limited send changes nothing", async () => {
    const a = await register();
    const b = await register();
    const first = await group(a, [b], "one");
    const second = await group(a, [b], "two");
    const ws = (await openSocket(`/conversations/${second}/ws`, a.token)).socket!;

    for (let i = 0; i < 50; i++) expect((await send(a, first, `h${i}`)).status).toBe(201);
    for (let i = 0; i < 50; i++) {
      ws.send({ type: "send", client_message_id: `w${i}`, kind: "text", content: "x" });
      await ws.waitFor((f) => f.type === "sent" && f.client_message_id === `w${i}`);
    }

    // The bucket refills continuously (one token per 600 ms), so a few more may pass first.
    let extra = 0;
    let limited = await send(a, first, "over-http-0");
    while (limited.status === 201 && extra < 10) limited = await send(a, first, `over-http-${++extra}`);
    expect(extra).toBeLessThan(10);
    expect(limited.status).toBe(429);
    expect(limited.json.error.code).toBe("rate_limited");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);

    ws.send({ type: "send", client_message_id: "over-ws", kind: "text", content: "x" });
    const error = await ws.waitFor((f) => f.type === "error");
    expect(error).toMatchObject({ code: "rate_limited", ref: "over-ws" });
    expect(error.retry_after).toBeGreaterThanOrEqual(1);

    // Nothing of the refused sends was stored, and a repeat of a stored one still answers.
    const history = await call("GET", `/conversations/${first}/messages?limit=200`, { token: a.token });
    expect(history.json.messages).toHaveLength(50 + extra);
    expect((await send(a, first, "h0")).status).toBe(200);
    // Another user's bucket is their own.
    expect((await send(b, first, "b-fine")).status).toBe(201);
  });
});

describe("socket limits", () => {
  it("caps a user's open device sockets", async () => {
    const a = await register();
    const open = [];
    for (let i = 0; i < 4; i++) open.push((await openSocket(`/sync`, a.token)).socket!);
    const refused = await openSocket(`/sync`, a.token);
    expect(refused.status).toBe(422);
    open[0]!.ws.close(1000);
    await open[0]!.waitClosed();
    await expect.poll(async () => (await openSocket(`/sync`, a.token)).status).toBe(101);
  });

  it("refuses upgrades from origins outside the allow-list", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    const upgrade = (path: string, origin: string) =>
      exports.default.fetch(new Request(`${BASE}${path}?token=${a.token}`, { headers: { upgrade: "websocket", origin } }));
    for (const path of [`/sync`, `/conversations/${id}/ws`]) {
      const refused = await upgrade(path, "https://evil.example");
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as any).error.code).toBe("forbidden");
      const allowed = await upgrade(path, "https://app.example");
      expect(allowed.status).toBe(101);
      allowed.webSocket!.accept();
      allowed.webSocket!.close(1000);
    }
  });
});
