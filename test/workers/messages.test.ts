/** Messages, history and read/delivered markers over HTTP: CONTRACT.md sections 1, 2 and 5. */
import { describe, expect, it } from "vitest";
import { direct, eventually, expectError, fakeConversationId, history, list, mark, seqs, sleep, user, type User } from "./api-helpers";
import { call, group, openSocket, send } from "./helpers";

const post = (s: User, id: string, body: unknown) => call("POST", `/conversations/${id}/messages`, { token: s.token, body });
const postRaw = (s: User, id: string, raw: string) => call("POST", `/conversations/${id}/messages`, { token: s.token, raw });

/** Everything in the conversation, oldest first (at most 200). */
async function allMessages(s: User, id: string): Promise<any[]> {
  const res = await history(s, id, "after_seq=0&limit=200");
  expect(res.status).toBe(200);
  return res.json.messages;
}

async function sendMany(s: User, id: string, n: number, prefix = "m") {
  const out: any[] = [];
  for (let i = 1; i <= n; i++) {
    const res = await send(s, id, `${prefix}${i}`);
    expect(res.status).toBe(201);
    out.push(res.json);
  }
  return out;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("POST /v1/conversations/:id/messages", () => {
  it("answers 201 with the stored message", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    const before = Date.now();
    const res = await post(a, id, { client_message_id: "c-1", kind: "text", content: "hello" });
    expect(res.status).toBe(201);
    expect(Object.keys(res.json).sort()).toEqual(
      ["client_message_id", "content", "conversation_id", "created_at", "kind", "message_id", "sender_device_id", "sender_id", "seq"].sort(),
    );
    expect(res.json).toMatchObject({
      conversation_id: id,
      seq: 1,
      sender_id: a.user_id,
      sender_device_id: a.device_id,
      client_message_id: "c-1",
      kind: "text",
      content: "hello",
    });
    expect(typeof res.json.message_id).toBe("string");
    expect(res.json.message_id.length).toBeGreaterThan(0);
    expect(res.json.created_at).toBeGreaterThanOrEqual(before);
    expect(res.json.created_at).toBeLessThanOrEqual(Date.now());
    // History holds the same message, to every member.
    expect(await allMessages(b, id)).toEqual([res.json]);
  });

  it("numbers messages 1, 2, 3… across senders with no gaps", async () => {
    const a = await user();
    const b = await user();
    const id = (await direct(a, b)).json.conversation_id;
    const s1 = await send(a, id, "x");
    const s2 = await send(b, id, "x"); // same client id, other sender: a new message
    const s3 = await send(a, id, "y");
    expect([s1, s2, s3].map((r) => [r.status, r.json.seq])).toEqual([
      [201, 1],
      [201, 2],
      [201, 3],
    ]);
    expect(new Set([s1, s2, s3].map((r) => r.json.message_id)).size).toBe(3);
  });

  it("assigns distinct consecutive seqs to concurrent sends", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    const results = await Promise.all(range(1, 20).map((i) => send(i % 2 ? a : b, id, `p${i}`)));
    expect(results.every((r) => r.status === 201)).toBe(true);
    expect(results.map((r) => r.json.seq).sort((x, y) => x - y)).toEqual(range(1, 20));
    expect((await allMessages(a, id)).map((m) => m.seq)).toEqual(range(1, 20));
  });

  it("answers 200 with the original on a repeated client_message_id, storing it once", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    const first = await post(a, id, { client_message_id: "dup", kind: "text", content: "original" });
    expect(first.status).toBe(201);
    const again = await post(a, id, { client_message_id: "dup", kind: "text", content: "original" });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    // Even with a different body, the original stands.
    const changed = await post(a, id, { client_message_id: "dup", kind: "encrypted", content: "something else" });
    expect(changed.status).toBe(200);
    expect(changed.json).toEqual(first.json);
    // And concurrently.
    const burst = await Promise.all(range(1, 5).map(() => post(a, id, { client_message_id: "dup", kind: "text", content: "original" })));
    expect(burst.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    for (const r of burst) expect(r.json).toEqual(first.json);

    expect(await allMessages(b, id)).toEqual([first.json]);
    const next = await send(a, id, "after-dup");
    expect(next.json.seq).toBe(2);
  });

  it("stores a repeat once even when it is sent concurrently for the first time", async () => {
    const a = await user();
    const id = await group(a, []);
    const burst = await Promise.all(range(1, 6).map(() => post(a, id, { client_message_id: "race", kind: "text", content: "r" })));
    expect(burst.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    expect(new Set(burst.map((r) => r.json.message_id)).size).toBe(1);
    expect(await allMessages(a, id)).toHaveLength(1);
  });

  it("accepts kinds text and encrypted, and stores content unchanged", async () => {
    const a = await user();
    const id = await group(a, []);
    const weird = "  \u0000 emoji 🎉 \n\t \"quotes\" <b>html</b> \\ é";
    const text = await post(a, id, { client_message_id: "k1", kind: "text", content: weird });
    const enc = await post(a, id, { client_message_id: "k2", kind: "encrypted", content: "AAECAwQ=" });
    const empty = await post(a, id, { client_message_id: "k3", kind: "text", content: "" });
    expect([text.status, enc.status, empty.status]).toEqual([201, 201, 201]);
    expect(text.json.content).toBe(weird);
    expect(enc.json.kind).toBe("encrypted");
    expect((await allMessages(a, id)).map((m) => [m.kind, m.content])).toEqual([
      ["text", weird],
      ["encrypted", "AAECAwQ="],
      ["text", ""],
    ]);
  });

  it("answers 400 for an unknown kind, and for media without media_id", async () => {
    const a = await user();
    const id = await group(a, []);
    await send(a, id, "base");
    for (const body of [
      { client_message_id: "k1", kind: "sticker", content: "x" },
      { client_message_id: "k2", kind: "TEXT", content: "x" },
      { client_message_id: "k3", kind: "media", content: "caption" },
    ]) {
      const res = await post(a, id, body);
      expect.soft(res.status, JSON.stringify(body)).toBe(400);
      if (res.status === 400) expectError(res, 400, "invalid_request");
    }
    expect((await allMessages(a, id)).map((m) => m.client_message_id)).toEqual(["base"]);
  });

  it("accepts content of exactly 100,000 characters and answers 413 for 100,001", async () => {
    const a = await user();
    const id = await group(a, []);
    const ok = await post(a, id, { client_message_id: "max", kind: "text", content: "x".repeat(100_000) });
    expect(ok.status).toBe(201);
    expect(ok.json.content).toHaveLength(100_000);
    expectError(await post(a, id, { client_message_id: "over", kind: "text", content: "x".repeat(100_001) }), 413, "too_large");
    // Length is JavaScript string length: 50,000 astral characters are 100,000 UTF-16 units.
    const astral = "😀".repeat(50_000);
    expect(astral.length).toBe(100_000);
    expect((await post(a, id, { client_message_id: "astral", kind: "text", content: astral })).status).toBe(201);
    expectError(await post(a, id, { client_message_id: "astral2", kind: "text", content: `${astral}x` }), 413, "too_large");
    expect((await allMessages(a, id)).map((m) => m.client_message_id)).toEqual(["max", "astral"]);
  });

  it("answers 413 for a body over 256 KiB, whatever makes it large", async () => {
    const a = await user();
    const id = await group(a, []);
    await send(a, id, "base");
    // Over the content limit and the body limit.
    expectError(await post(a, id, { client_message_id: "big1", kind: "text", content: "x".repeat(300_000) }), 413, "too_large");
    // Short content, padded by an extra field.
    expectError(await post(a, id, { client_message_id: "big2", kind: "text", content: "hi", pad: "x".repeat(270_000) }), 413, "too_large");
    // Under 100,000 characters but over 256 KiB once encoded as UTF-8 (3 bytes each).
    expectError(await post(a, id, { client_message_id: "big3", kind: "text", content: "€".repeat(90_000) }), 413, "too_large");
    // A body that is not JSON at all but too large is still refused for its size.
    expectError(await postRaw(a, id, "{".repeat(300_000)), 413, "too_large");
    expect((await allMessages(a, id)).map((m) => m.client_message_id)).toEqual(["base"]);
  });

  it("accepts a body of exactly 256 KiB and refuses one byte more (413)", async () => {
    const a = await user();
    const id = await group(a, []);
    const bodyOf = (cmid: string, bytes: number) => {
      const base = { client_message_id: cmid, kind: "text", content: "é".repeat(50_000), pad: "" };
      const without = new TextEncoder().encode(JSON.stringify(base)).byteLength;
      const raw = JSON.stringify({ ...base, pad: "x".repeat(bytes - without) });
      expect(new TextEncoder().encode(raw).byteLength).toBe(bytes);
      return raw;
    };
    const atLimit = await postRaw(a, id, bodyOf("exact", 256 * 1024));
    expect(atLimit.status).toBe(201);
    expectError(await postRaw(a, id, bodyOf("over", 256 * 1024 + 1)), 413, "too_large");
    expect((await allMessages(a, id)).map((m) => m.client_message_id)).toEqual(["exact"]);
  });

  it("answers 400 for missing or ill-typed fields and malformed JSON", async () => {
    const a = await user();
    const id = await group(a, []);
    await send(a, id, "base");
    const bodies: unknown[] = [
      {},
      { kind: "text", content: "x" },
      { client_message_id: "f1", content: "x" },
      { client_message_id: "f2", kind: "text" },
      { client_message_id: 5, kind: "text", content: "x" },
      { client_message_id: "", kind: "text", content: "x" },
      { client_message_id: "f3", kind: 1, content: "x" },
      { client_message_id: "f4", kind: "text", content: 5 },
      { client_message_id: "f5", kind: "text", content: null },
      { client_message_id: "f6", kind: "text", content: ["x"] },
      { client_message_id: "f7", kind: "text", content: { text: "x" } },
      { client_message_id: "f8", kind: "media", content: "x", media_id: 5 },
      [],
      "text",
      null,
    ];
    for (const body of bodies) {
      const res = await post(a, id, body);
      expect.soft(res.status, JSON.stringify(body)).toBe(400);
      if (res.status === 400) expectError(res, 400, "invalid_request");
    }
    for (const raw of ["", "{", "{'client_message_id':'x'}", "not json"]) {
      const res = await postRaw(a, id, raw);
      expect.soft(res.status, JSON.stringify(raw)).toBe(400);
      if (res.status === 400) expectError(res, 400, "invalid_request");
    }
    expect((await allMessages(a, id)).map((m) => m.client_message_id)).toEqual(["base"]);
  });

  it("answers 403 to a non-member and 404 for an unknown conversation", async () => {
    const a = await user();
    const outsider = await user();
    const id = await group(a, []);
    await send(a, id, "base");
    expectError(await send(outsider, id, "intrude"), 403, "forbidden");
    expectError(await send(outsider, fakeConversationId(), "x"), 404, "not_found");
    expectError(await send(outsider, "nope", "x"), 404, "not_found");
    expect((await allMessages(a, id)).map((m) => m.client_message_id)).toEqual(["base"]);
  });

  it("refuses a repeat of an earlier client_message_id once the sender is no longer a member", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    expect((await send(b, id, "mine")).status).toBe(201);
    expect((await call("DELETE", `/conversations/${id}/members/${b.user_id}`, { token: a.token })).status).toBe(204);
    expectError(await send(b, id, "mine"), 403, "forbidden");
  });
});

describe("GET /v1/conversations/:id/messages", () => {
  it("answers the newest page, default 50, without a cursor", async () => {
    const a = await user();
    const id = await group(a, []);
    expect(await history(a, id).then((r) => r.json)).toEqual({ messages: [], next_after_seq: null });
    await sendMany(a, id, 60);
    const res = await history(a, id);
    expect(res.status).toBe(200);
    expect(res.json.messages.map((m: any) => m.seq)).toEqual(range(11, 60));
    expect(res.json.next_after_seq).toBeNull();
    expect(await seqs(a, id, "limit=3")).toEqual([58, 59, 60]);
    expect(await seqs(a, id, "after_seq=0")).toEqual(range(1, 50));
  });

  it("pages forward with after_seq and next_after_seq", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    const sent = await sendMany(a, id, 12);
    const p1 = await history(b, id, "after_seq=0&limit=5");
    expect(p1.json.messages.map((m: any) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(p1.json.messages).toEqual(sent.slice(0, 5));
    expect(p1.json.next_after_seq).toBe(5);
    const p2 = await history(b, id, `after_seq=${p1.json.next_after_seq}&limit=5`);
    expect(p2.json.messages.map((m: any) => m.seq)).toEqual([6, 7, 8, 9, 10]);
    expect(p2.json.next_after_seq).toBe(10);
    const p3 = await history(b, id, `after_seq=${p2.json.next_after_seq}&limit=5`);
    expect(p3.json.messages.map((m: any) => m.seq)).toEqual([11, 12]);
    expect(p3.json.next_after_seq).toBeNull();
    // A page that ends exactly on the last message has nothing after it either.
    expect((await history(b, id, "after_seq=7&limit=5")).json.next_after_seq).toBeNull();
    const past = await history(b, id, "after_seq=12");
    expect(past.json).toEqual({ messages: [], next_after_seq: null });
    expect((await history(b, id, "after_seq=999")).json.messages).toEqual([]);
  });

  it("pages backward with before_seq, ascending", async () => {
    const a = await user();
    const id = await group(a, []);
    await sendMany(a, id, 12);
    expect(await seqs(a, id, "before_seq=11&limit=5")).toEqual([6, 7, 8, 9, 10]);
    expect(await seqs(a, id, "before_seq=3&limit=5")).toEqual([1, 2]);
    expect(await seqs(a, id, "before_seq=1")).toEqual([]);
    expect(await seqs(a, id, "before_seq=999&limit=2")).toEqual([11, 12]);
    expect(await seqs(a, id, "before_seq=13")).toEqual(range(1, 12));
  });

  it("accepts limits 1 and 200", async () => {
    const a = await user();
    const id = await group(a, []);
    await sendMany(a, id, 3);
    expect(await seqs(a, id, "limit=1")).toEqual([3]);
    expect(await seqs(a, id, "limit=200")).toEqual([1, 2, 3]);
    expect(await seqs(a, id, "after_seq=0&limit=1")).toEqual([1]);
  });

  it("answers 400 for both cursors, or a bad limit or cursor", async () => {
    const a = await user();
    const id = await group(a, []);
    await sendMany(a, id, 2);
    for (const q of [
      "after_seq=0&before_seq=2",
      "limit=0",
      "limit=201",
      "limit=abc",
      "limit=-1",
      "limit=1.5",
      "limit=",
      "after_seq=abc",
      "after_seq=-1",
      "before_seq=x",
      "before_seq=1e3",
    ]) {
      const res = await history(a, id, q);
      expect.soft(res.status, q).toBe(400);
      if (res.status === 400) expectError(res, 400, "invalid_request");
    }
  });

  it("answers 403 to a non-member and 404 for an unknown conversation", async () => {
    const a = await user();
    const outsider = await user();
    const id = await group(a, []);
    expectError(await history(outsider, id), 403, "forbidden");
    expectError(await history(a, fakeConversationId()), 404, "not_found");
    expectError(await history(a, "garbage"), 404, "not_found");
  });
});

describe("POST /v1/conversations/:id/read and /delivered", () => {
  it("answers 204 with no body", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    await sendMany(a, id, 3);
    for (const kind of ["read", "delivered"] as const) {
      const res = await mark(b, id, kind, 2);
      expect(res.status).toBe(204);
      expect(res.json).toBeNull();
      expect((await mark(b, id, kind, 3)).status).toBe(204);
      // Up to the last message, and zero, are within range.
      expect((await mark(b, id, kind, 0)).status).toBe(204);
    }
  });

  it("moves markers forward only: a lower one is accepted and ignored", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    await sendMany(a, id, 5);
    const opened = await openSocket(`/conversations/${id}/ws`, a.token);
    expect(opened.status).toBe(101);
    const ws = opened.socket!;
    try {
      for (const kind of ["read", "delivered"] as const) {
        expect((await mark(b, id, kind, 3)).status).toBe(204);
        expect((await mark(b, id, kind, 1)).status).toBe(204); // lower: ignored
        expect((await mark(b, id, kind, 3)).status).toBe(204); // equal: ignored
        expect((await mark(b, id, kind, 4)).status).toBe(204);
        await ws.waitFor((f) => f.type === "receipt" && f.kind === kind && f.up_to_seq === 4);
      }
      const receipts = ws.frames.filter((f) => f.type === "receipt").map((f) => [f.kind, f.user_id, f.up_to_seq]);
      expect(receipts).toEqual([
        ["read", b.user_id, 3],
        ["read", b.user_id, 4],
        ["delivered", b.user_id, 3],
        ["delivered", b.user_id, 4],
      ]);
    } finally {
      ws.ws.close(1000, "done");
    }
    // The read marker the list reports stayed at the highest.
    await eventually(async () => {
      const summary = (await list(b)).json.conversations.find((c: any) => c.conversation_id === id);
      expect(summary).toMatchObject({ last_read_seq: 4, unread_count: 1 });
    });
  });

  it("keeps delivered markers per device", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    await sendMany(a, id, 3);
    const second = await call("POST", "/auth/login", { body: { handle: b.handle, password: "correct horse" } });
    const b2 = { ...b, device_id: second.json.device_id, token: second.json.token };
    expect((await mark(b, id, "delivered", 3)).status).toBe(204);
    expect((await mark(b2, id, "delivered", 1)).status).toBe(204);
    expect((await mark(b2, id, "delivered", 2)).status).toBe(204);
  });

  it("answers 400 for up_to_seq beyond the last message, and for bad bodies", async () => {
    const a = await user();
    const b = await user();
    const id = await group(a, [b]);
    for (const kind of ["read", "delivered"] as const) {
      expectError(await mark(b, id, kind, 1), 400, "invalid_request"); // nothing sent yet
    }
    await sendMany(a, id, 2);
    for (const kind of ["read", "delivered"] as const) {
      expectError(await mark(b, id, kind, 3), 400, "invalid_request");
      expectError(await mark(b, id, kind, 1_000_000), 400, "invalid_request");
      for (const bad of [-1, 1.5, "2", null, true]) {
        const res = await mark(b, id, kind, bad);
        expect.soft(res.status, `${kind} ${JSON.stringify(bad)}`).toBe(400);
        if (res.status === 400) expectError(res, 400, "invalid_request");
      }
      expectError(await call("POST", `/conversations/${id}/${kind}`, { token: b.token, body: {} }), 400, "invalid_request");
      expectError(await call("POST", `/conversations/${id}/${kind}`, { token: b.token, raw: "{" }), 400, "invalid_request");
    }
    // None of the refused markers moved anything.
    await sleep(200);
    const summary = (await list(b)).json.conversations.find((c: any) => c.conversation_id === id);
    expect(summary).toMatchObject({ last_read_seq: 0, unread_count: 2 });
  });

  it("answers 403 to a non-member and 404 for an unknown conversation", async () => {
    const a = await user();
    const outsider = await user();
    const id = await group(a, []);
    await sendMany(a, id, 1);
    for (const kind of ["read", "delivered"] as const) {
      expectError(await mark(outsider, id, kind, 1), 403, "forbidden");
      expectError(await mark(outsider, id, kind, 0), 403, "forbidden");
      expectError(await mark(a, fakeConversationId(), kind, 0), 404, "not_found");
      expectError(await mark(a, "garbage", kind, 0), 404, "not_found");
    }
  });
});
