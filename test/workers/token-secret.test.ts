/** Issue 11, finding 5: a short or publicly known TOKEN_SECRET makes the Worker refuse to work. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../worker/app";
import { BASE } from "./helpers";
import { freshHandle } from "./api-helpers";

async function withSecret(secret: string | undefined, path: string, init: RequestInit = {}) {
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`${BASE}${path}`, init), { ...env, TOKEN_SECRET: secret } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, json: (await res.json()) as any };
}

const registration = () => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ handle: freshHandle("sec"), password: "correct horse" }),
});

describe("TOKEN_SECRET", () => {
  for (const [why, secret] of [
    ["the old example value", "local-dev-secret-change-me-0123456789abcdef"],
    ["the example's placeholder", "npm-start-replaces-this-with-a-random-value"],
    ["shorter than 32 bytes", "0123456789abcdef0123456789abcde"],
    ["empty", ""],
    ["unset", undefined],
  ] as const) {
    it(`refuses to register, log in or authenticate when it is ${why}`, async () => {
      for (const [path, init] of [
        ["/auth/register", registration()],
        ["/auth/login", { ...registration(), body: JSON.stringify({ handle: "x", password: "y" }) }],
        ["/me", { headers: { authorization: "Bearer x" } }],
      ] as const) {
        const res = await withSecret(secret, path, init);
        expect(res.status).toBe(500);
        expect(res.json.error.code).toBe("internal");
        expect(res.json.error.message).toContain("TOKEN_SECRET");
      }
      expect((await withSecret(secret, "/health")).status).toBe(200);
    });
  }

  it("works with 32 random bytes", async () => {
    const res = await withSecret("abcdefghijklmnopqrstuvwxyz012345", "/auth/register", registration());
    expect(res.status).toBe(201);
  });
});
