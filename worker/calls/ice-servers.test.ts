/** The ICE server source: static list, TURN minting, per-user caching for half the credentials' life. */
import { beforeEach, describe, expect, it } from "vitest";
import { clearIceCache, DEFAULT_ICE_SERVERS, iceConfig, IceConfigError, iceServersFor } from "./ice-servers";

const TURN = { TURN_KEY_ID: "key-1", TURN_KEY_API_TOKEN: "api-token", TURN_CREDENTIAL_TTL_SECONDS: "600", TURN_API_BASE: "https://turn.test" };

function standIn() {
  const calls: { url: string; auth: string | null; body: unknown }[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(input), auth: new Headers(init?.headers).get("authorization"), body: JSON.parse(String(init?.body)) });
    return Response.json({ iceServers: [{ urls: ["turn:turn.test:3478?transport=udp"], username: `u${calls.length}`, credential: "c" }] }, { status: 201 });
  }) as typeof fetch;
  return { calls, fetchImpl };
}

beforeEach(() => clearIceCache());

describe("ICE servers", () => {
  it("without a TURN key: the ICE_SERVERS var, by default Cloudflare's STUN", async () => {
    expect((await iceServersFor("u1", iceConfig({}))).ice_servers).toEqual(DEFAULT_ICE_SERVERS);
    const custom = iceConfig({ ICE_SERVERS: '[{"urls":["stun:a.example:3478","stun:b.example:3478"]}]' });
    expect((await iceServersFor("u1", custom)).ice_servers).toEqual([{ urls: ["stun:a.example:3478", "stun:b.example:3478"] }]);
    expect(() => iceConfig({ ICE_SERVERS: "not json" })).toThrow(IceConfigError);
    expect(() => iceConfig({ ICE_SERVERS: '[{"url":"x"}]' })).toThrow(IceConfigError);
  });

  it("with a TURN key: minted with the token (never handed out), for the configured ttl", async () => {
    const { calls, fetchImpl } = standIn();
    const answer = await iceServersFor("u1", iceConfig(TURN), fetchImpl);
    expect(calls).toEqual([{ url: "https://turn.test/v1/turn/keys/key-1/credentials/generate-ice-servers", auth: "Bearer api-token", body: { ttl: 600 } }]);
    expect(answer).toEqual({ ice_servers: [{ urls: ["turn:turn.test:3478?transport=udp"], username: "u1", credential: "c" }], ttl: 600 });
    expect(JSON.stringify(answer)).not.toContain("api-token");
  });

  it("cached per user for less than the ttl: reused in its first half, minted anew after", async () => {
    const { calls, fetchImpl } = standIn();
    const config = iceConfig(TURN);
    const t0 = 1_000_000;
    await iceServersFor("u1", config, fetchImpl, t0);
    const again = await iceServersFor("u1", config, fetchImpl, t0 + 200_000);
    expect(calls).toHaveLength(1);
    expect(again.ttl).toBe(400);
    await iceServersFor("u2", config, fetchImpl, t0 + 200_000); // another user: their own credentials
    expect(calls).toHaveLength(2);
    const later = await iceServersFor("u1", config, fetchImpl, t0 + 301_000); // under half left: new ones
    expect(calls).toHaveLength(3);
    expect(later.ttl).toBe(600);
  });

  it("a failing Realtime API is reported, not cached", async () => {
    let n = 0;
    const failing = (async () => (n++, new Response("no", { status: 503 }))) as typeof fetch;
    await expect(iceServersFor("u1", iceConfig(TURN), failing)).rejects.toThrow(/503/);
    await expect(iceServersFor("u1", iceConfig(TURN), failing)).rejects.toThrow(/503/);
    expect(n).toBe(2);
  });
});
