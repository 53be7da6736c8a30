/** The MLS key-package directory, CONTRACT.md section 10, with real key packages from ts-mls. */
import { describe, expect, it } from "vitest";
import { fromBase64Url, newKeyPackage, toBase64Url } from "../../mls/adapter";
import { expectError, user, type User } from "./api-helpers";
import { call, openSocket } from "./helpers";

const device = (s: User) => ({ userId: s.user_id, deviceId: s.device_id });
const packages = (s: User, n: number) => Promise.all(Array.from({ length: n }, () => newKeyPackage(device(s)).then((k) => k.encoded)));
const upload = (s: User, body: unknown) => call("POST", "/mls/key-packages", { token: s.token, body });
const count = async (s: User) => {
  const res = await call("GET", "/mls/key-packages/count", { token: s.token });
  expect(res.status).toBe(200);
  return res.json.count as number;
};
const claim = (s: User, userIds: string[]) => call("POST", "/mls/key-packages/claim", { token: s.token, body: { user_ids: userIds } });

async function login(s: User): Promise<User> {
  const res = await call("POST", "/auth/login", { body: { handle: s.handle, password: "correct horse" } });
  expect(res.status).toBe(200);
  return { ...res.json, handle: s.handle };
}

/** The same package with one byte of its signature (the last bytes of the encoding) flipped. */
function tamper(b64: string): string {
  const bytes = fromBase64Url(b64)!;
  bytes[bytes.length - 1]! ^= 0x01;
  return toBase64Url(bytes);
}

describe("POST /v1/mls/key-packages", () => {
  it("stores verified packages of the calling device and counts them", async () => {
    const a = await user("kp");
    const res = await upload(a, { key_packages: await packages(a, 3), last_resort: (await newKeyPackage(device(a))).encoded });
    expect(res.status).toBe(201);
    expect(res.json).toEqual({ stored: 4 });
    expect(await count(a)).toBe(3);
  });

  it("stores none when one is bad: signature, identity, cipher suite, lifetime, encoding", async () => {
    const a = await user("kp");
    const b = await user("kp");
    const now = BigInt(Math.floor(Date.now() / 1000));
    const good = await packages(a, 2);
    const bad = {
      signature: tamper((await newKeyPackage(device(a))).encoded),
      identity: (await newKeyPackage(device(b))).encoded,
      otherDevice: (await newKeyPackage({ userId: a.user_id, deviceId: "d_someoneelse" })).encoded,
      suite: (await newKeyPackage(device(a), { cipherSuite: "MLS_128_DHKEMP256_AES128GCM_SHA256_P256" })).encoded,
      expired: (await newKeyPackage(device(a), { lifetime: { notBefore: now - 7200n, notAfter: now - 60n } })).encoded,
      garbage: "AAECAwQF",
    };
    for (const [what, pkg] of Object.entries(bad)) {
      const res = await upload(a, { key_packages: [...good, pkg] });
      expectError(res, 400, "invalid_request");
      expect(res.json.error.message, what).toMatch(/^key_packages\.2: /);
    }
    expectError(await upload(a, { key_packages: good, last_resort: bad.signature }), 400, "invalid_request");
    expectError(await upload(a, { key_packages: ["not base64url!"] }), 400, "invalid_request");
    expect(await count(a)).toBe(0);
  });

  it("refuses the 101st unclaimed package with 422 and stores none of that upload", async () => {
    const a = await user("kp");
    expect((await upload(a, { key_packages: await packages(a, 60) })).json).toEqual({ stored: 60 });
    expectError(await upload(a, { key_packages: await packages(a, 41) }), 422, "limit_exceeded");
    expect(await count(a)).toBe(60);
    expect((await upload(a, { key_packages: await packages(a, 40) })).status).toBe(201);
    expect(await count(a)).toBe(100);
    expectError(await upload(a, { key_packages: await packages(a, 1) }), 422, "limit_exceeded");
    expect(await count(a)).toBe(100);
  });

  it("does not store a repeat of a stored package twice", async () => {
    const a = await user("kp");
    const pkgs = await packages(a, 2);
    expect((await upload(a, { key_packages: pkgs })).json).toEqual({ stored: 2 });
    expect((await upload(a, { key_packages: [...pkgs, pkgs[0]] })).json).toEqual({ stored: 0 });
    expect(await count(a)).toBe(2);
  });
});

describe("POST /v1/mls/key-packages/claim", () => {
  it("hands out one package per live device of each user", async () => {
    const a = await user("kp");
    const a2 = await login(a);
    const b = await user("kp");
    const pa = await packages(a, 2);
    const pa2 = await packages(a2, 2);
    await upload(a, { key_packages: pa });
    await upload(a2, { key_packages: pa2 });
    const res = await claim(b, [a.user_id]);
    expect(res.status).toBe(200);
    const got = (res.json.key_packages as any[]).sort((x, y) => x.device_id.localeCompare(y.device_id));
    const want = [
      { user_id: a.user_id, device_id: a.device_id, key_package: pa[0] },
      { user_id: a.user_id, device_id: a2.device_id, key_package: pa2[0] },
    ].sort((x, y) => x.device_id.localeCompare(y.device_id));
    expect(got).toEqual(want);
    expect(await count(a)).toBe(1);
    // A revoked device is no longer live: nothing of it is handed out.
    expect((await call("DELETE", `/devices/${a2.device_id}`, { token: a.token })).status).toBe(204);
    const after = await claim(b, [a.user_id]);
    expect(after.json.key_packages).toEqual([{ user_id: a.user_id, device_id: a.device_id, key_package: pa[1] }]);
  });

  it("never hands one out twice under concurrent claims, then gives the last resort (kept)", async () => {
    const a = await user("kp");
    const b = await user("kp");
    const pkgs = await packages(a, 10);
    const lastResort = (await newKeyPackage(device(a))).encoded;
    await upload(a, { key_packages: pkgs, last_resort: lastResort });
    const answers = await Promise.all(Array.from({ length: 20 }, () => claim(b, [a.user_id])));
    const handed = answers.map((r) => {
      expect(r.status).toBe(200);
      expect(r.json.key_packages).toHaveLength(1);
      return r.json.key_packages[0].key_package as string;
    });
    const ordinary = handed.filter((k) => k !== lastResort);
    expect(ordinary).toHaveLength(10);
    expect(new Set(ordinary)).toEqual(new Set(pkgs));
    expect(handed.filter((k) => k === lastResort)).toHaveLength(10);
    expect(await count(a)).toBe(0);
    // Uploading a claimed package again does not make it claimable again.
    expect((await upload(a, { key_packages: [pkgs[0]] })).json).toEqual({ stored: 0 });
    expect((await claim(b, [a.user_id])).json.key_packages[0].key_package).toBe(lastResort);
  });

  it("gives nothing for a device with no packages, 404 for an unknown user, 400 past 256 users", async () => {
    const a = await user("kp");
    const b = await user("kp");
    expect((await claim(b, [a.user_id])).json).toEqual({ key_packages: [] });
    expectError(await claim(b, ["u_nobody_here"]), 404, "not_found");
    expectError(await claim(b, Array.from({ length: 257 }, (_, i) => `u_${i}`)), 400, "invalid_request");
    expectError(await claim(b, []), 400, "invalid_request");
  });

  it("tells the device when it falls below 10, on its own socket only", async () => {
    const a = await user("kp");
    const a2 = await login(a);
    const b = await user("kp");
    await upload(a, { key_packages: await packages(a, 10) });
    const mine = (await openSocket("/sync?since=0", a.token)).socket!;
    const other = (await openSocket("/sync?since=0", a2.token)).socket!;
    await claim(b, [a.user_id]);
    const low = await mine.waitFor((f) => f.type === "key_packages_low");
    expect(low).toEqual({ type: "key_packages_low", cursor: expect.any(String), count: 9 });
    // Stored with a cursor: a reconnect replays it, to that device only.
    const replay = (await openSocket(`/sync?since=${Number(low.cursor) - 1}`, a.token)).socket!;
    expect(await replay.waitFor((f) => f.type === "key_packages_low")).toEqual(low);
    const again = (await openSocket("/sync?since=0", a2.token)).socket!;
    await new Promise((r) => setTimeout(r, 200));
    expect(other.frames.filter((f) => f.type === "key_packages_low")).toEqual([]);
    expect(again.frames.filter((f) => f.type === "key_packages_low")).toEqual([]);
    for (const s of [mine, other, replay, again]) s.ws.close();
  });

  it("counts claims against the claimer's rate limit", async () => {
    const a = await user("kp");
    const b = await user("kp");
    const answers = await Promise.all(Array.from({ length: 61 }, () => claim(b, [a.user_id])));
    const limited = answers.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expectError(limited[0]!, 429, "rate_limited");
    expect(Number(limited[0]!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });
});
