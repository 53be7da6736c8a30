import { describe, expect, it } from "vitest";
import { call, group, register, send } from "./helpers";

describe("smoke", () => {
  it("health", async () => {
    const res = await call("GET", "/health");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ok: true });
  });

  it("sends and reads history", async () => {
    const a = await register();
    const b = await register();
    const id = await group(a, [b]);
    const first = await send(a, id, "x1");
    expect(first.status).toBe(201);
    expect(first.json.seq).toBe(1);
    const hist = await call("GET", `/conversations/${id}/messages`, { token: b.token });
    expect(hist.json.messages.map((m: any) => m.seq)).toEqual([1]);
  });
});
