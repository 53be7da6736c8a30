/**
 * Media (CONTRACT.md section 9) through the Worker, with real bytes checked by SHA-256.
 * vitest.config.ts binds small limits: one request up to 1 MiB, parts of 5 MiB (R2's
 * smallest), files up to 12 MiB.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Conversation } from "../../objects/conversation";
import { eventually, expectError, jsonOf, list, user } from "./api-helpers";
import { BASE, call, group, type Session } from "./helpers";

const SINGLE = 1024 * 1024;
const PART = 5 * 1024 * 1024;
const MAX = 12 * 1024 * 1024;

const stub = (id: string) => env.CONVERSATION.get(env.CONVERSATION.idFromName(id));

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

const sha256 = async (bytes: Uint8Array) =>
  Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");

async function fetchRaw(method: string, path: string, s: Session | null, init: { body?: BodyInit; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(s ? { authorization: `Bearer ${s.token}` } : {}), ...init.headers };
  return exports.default.fetch(new Request(`${BASE}${path}`, { method, headers, body: init.body, duplex: "half" } as RequestInit));
}

async function upload(s: Session, conversationId: string, bytes: Uint8Array, contentType = "application/octet-stream") {
  const res = await fetchRaw("POST", `/conversations/${conversationId}/media`, s, { body: bytes, headers: { "content-type": contentType } });
  return { status: res.status, json: await jsonOf(res), headers: res.headers };
}

const begin = (s: Session, conversationId: string, size: number, contentType = "video/mp4") =>
  call("POST", `/conversations/${conversationId}/media/uploads`, { token: s.token, body: { size, content_type: contentType } });

async function putPart(s: Session, conversationId: string, uploadId: string, n: number, bytes: Uint8Array | ReadableStream, length?: number) {
  const headers: Record<string, string> = length === undefined ? {} : { "content-length": String(length) };
  const res = await fetchRaw("PUT", `/conversations/${conversationId}/media/uploads/${uploadId}/parts/${n}`, s, { body: bytes, headers });
  return { status: res.status, json: await jsonOf(res) };
}

const complete = (s: Session, conversationId: string, uploadId: string) =>
  call("POST", `/conversations/${conversationId}/media/uploads/${uploadId}/complete`, { token: s.token });

const download = (s: Session, conversationId: string, mediaId: string, headers: Record<string, string> = {}) =>
  fetchRaw("GET", `/conversations/${conversationId}/media/${mediaId}`, s, { headers });

const sendMedia = (s: Session, conversationId: string, mediaId: string | undefined, clientMessageId = crypto.randomUUID(), kind = "media") =>
  call("POST", `/conversations/${conversationId}/messages`, {
    token: s.token,
    body: { client_message_id: clientMessageId, kind, content: "a caption", ...(mediaId ? { media_id: mediaId } : {}) },
  });

/** What R2 and the conversation object hold of this conversation's media. */
async function stored(conversationId: string) {
  const objects = (await env.MEDIA.list({ prefix: `media/${conversationId}/` })).objects.map((o) => o.key);
  const rows = await runInDurableObject(stub(conversationId), (_, state) =>
    state.storage.sql.exec<{ media_id: string; state: string }>("SELECT media_id, state FROM media").toArray(),
  );
  const parts = await runInDurableObject(stub(conversationId), (_, state) => state.storage.sql.exec("SELECT * FROM media_parts").toArray().length);
  return { objects, rows, parts };
}

/** A multipart upload of `bytes`, parts sent in the given order. */
async function uploadInParts(s: Session, conversationId: string, bytes: Uint8Array, order?: number[]) {
  const started = await begin(s, conversationId, bytes.length);
  expect(started.status).toBe(201);
  const { upload_id, part_size, part_count } = started.json;
  for (const n of order ?? Array.from({ length: part_count }, (_, i) => i + 1)) {
    const res = await putPart(s, conversationId, upload_id, n, bytes.subarray((n - 1) * part_size, n * part_size));
    expect(res).toEqual({ status: 200, json: { part: n } });
  }
  return { ...started.json, completed: await complete(s, conversationId, upload_id) };
}

describe("one-request uploads", () => {
  it("stores the bytes as sent: the answer's sha256 and the download match", async () => {
    const a = await user();
    const id = await group(a, []);
    const bytes = randomBytes(SINGLE - 17);
    const res = await upload(a, id, bytes, "image/png");
    expect(res.status).toBe(201);
    expect(res.json).toEqual({ media_id: expect.stringMatching(/^md_/), size: bytes.length, content_type: "image/png", sha256: await sha256(bytes) });

    const got = await download(a, id, res.json.media_id);
    expect(got.status).toBe(200);
    const body = new Uint8Array(await got.arrayBuffer());
    expect(body.length).toBe(bytes.length);
    expect(await sha256(body)).toBe(res.json.sha256);
    expect(got.headers.get("content-length")).toBe(String(bytes.length));
    expect(got.headers.get("content-type")).toBe("image/png");
    expect(got.headers.get("etag")).toMatch(/^"[^"]+"$/);
    expect(got.headers.get("accept-ranges")).toBe("bytes");
    expect(got.headers.get("x-content-type-options")).toBe("nosniff");
    expect(got.headers.get("content-security-policy")).toBe("sandbox");
    expect(got.headers.get("content-disposition")).toBeNull();
  });

  it("serves types other than image, video and audio as attachments; keeps only the media type", async () => {
    const a = await user();
    const id = await group(a, []);
    for (const [type, stored, attachment] of [
      ["text/html; charset=utf-8", "text/html", true],
      ["Application/PDF", "application/pdf", true],
      ["audio/ogg", "audio/ogg", false],
      ["video/mp4", "video/mp4", false],
    ] as const) {
      const res = await upload(a, id, new TextEncoder().encode("<script>alert(1)</script>"), type);
      expect(res.json.content_type).toBe(stored);
      const got = await download(a, id, res.json.media_id);
      expect(got.headers.get("content-type")).toBe(stored);
      expect(got.headers.get("content-disposition")).toBe(attachment ? "attachment" : null);
      expect(got.headers.get("content-security-policy")).toBe("sandbox");
      await got.arrayBuffer();
    }
    // No content-type: octet-stream. An ill-formed one: 400.
    const none = await fetchRaw("POST", `/conversations/${id}/media`, a, { body: new Uint8Array(3) });
    expect((await jsonOf(none)).content_type).toBe("application/octet-stream");
    // An empty file is a file.
    const empty = await upload(a, id, new Uint8Array(0), "text/plain");
    expect(empty.json).toMatchObject({ size: 0, sha256: await sha256(new Uint8Array(0)) });
    expect((await download(a, id, empty.json.media_id)).headers.get("content-length")).toBe("0");
    for (const bad of ["not a type", "text/", "text/html, image/png"]) expectError(await upload(a, id, new Uint8Array(3), bad), 400, "invalid_request");
  });

  it("refuses a body over MAX_MEDIA_SINGLE_BYTES (413), without content-length (400), or shorter or longer than declared (400), leaving nothing", async () => {
    const a = await user();
    const id = await group(a, []);
    expectError(await upload(a, id, new Uint8Array(SINGLE + 1)), 413, "too_large");

    const chunked = new ReadableStream({ start: (c) => (c.enqueue(new Uint8Array(10)), c.close()) });
    const noLength = await fetchRaw("POST", `/conversations/${id}/media`, a, { body: chunked });
    expectError({ status: noLength.status, json: await jsonOf(noLength) }, 400, "invalid_request");

    for (const sent of [500, 1500]) {
      const body = new ReadableStream({ start: (c) => (c.enqueue(randomBytes(sent)), c.close()) });
      const res = await fetchRaw("POST", `/conversations/${id}/media`, a, { body, headers: { "content-length": "1000" } });
      expectError({ status: res.status, json: await jsonOf(res) }, 400, "invalid_request");
    }
    expect(await stored(id)).toEqual({ objects: [], rows: [], parts: 0 });
  });
});

describe("uploads in parts", () => {
  it("joins parts sent out of order, one of them retried, into the file sent (sha256)", async () => {
    const a = await user();
    const id = await group(a, []);
    const bytes = randomBytes(2 * PART + 12_345);
    const started = await begin(a, id, bytes.length);
    expect(started.status).toBe(201);
    expect(started.json).toEqual({ upload_id: expect.stringMatching(/^mu_/), media_id: expect.stringMatching(/^md_/), part_size: PART, part_count: 3 });
    const { upload_id, media_id } = started.json;
    const part = (n: number) => bytes.subarray((n - 1) * PART, n * PART);

    expect((await putPart(a, id, upload_id, 3, part(3))).status).toBe(200);
    // Part 1 first with the wrong bytes, then again with the right ones: the last write wins.
    expect((await putPart(a, id, upload_id, 1, randomBytes(PART))).status).toBe(200);
    expectError(await complete(a, id, upload_id), 400, "invalid_request"); // part 2 is missing
    expect((await putPart(a, id, upload_id, 2, part(2))).status).toBe(200);
    expect((await putPart(a, id, upload_id, 1, part(1))).status).toBe(200);

    const done = await complete(a, id, upload_id);
    expect(done.status).toBe(201);
    expect(done.json).toEqual({ media_id, size: bytes.length, content_type: "video/mp4", sha256: await sha256(bytes) });
    // Repeatable: the same answer, nothing joined twice.
    expect(await complete(a, id, upload_id)).toMatchObject({ status: 201, json: done.json });

    const got = await download(a, id, media_id);
    expect(got.status).toBe(200);
    expect(await sha256(new Uint8Array(await got.arrayBuffer()))).toBe(done.json.sha256);
    expect(await stored(id)).toEqual({ objects: [`media/${id}/${media_id}`], rows: [{ media_id, state: "complete" }], parts: 0 });
    // A completed upload takes no more parts.
    expectError(await putPart(a, id, upload_id, 1, part(1)), 400, "invalid_request");
  });

  it("refuses a file over MAX_MEDIA_BYTES and parts of the wrong size, keeping nothing of them", async () => {
    const a = await user();
    const id = await group(a, []);
    expectError(await begin(a, id, MAX + 1), 413, "too_large");
    expectError(await begin(a, id, 0), 400, "invalid_request");
    expectError(await begin(a, id, 10, "nonsense"), 400, "invalid_request");
    expect(await stored(id)).toEqual({ objects: [], rows: [], parts: 0 });

    const { upload_id } = (await begin(a, id, PART + 10)).json;
    expectError(await putPart(a, id, upload_id, 1, new Uint8Array(PART + 1)), 413, "too_large");
    expectError(await putPart(a, id, upload_id, 1, new Uint8Array(PART - 1)), 400, "invalid_request");
    expectError(await putPart(a, id, upload_id, 2, new Uint8Array(11)), 413, "too_large");
    expectError(await putPart(a, id, upload_id, 3, new Uint8Array(10)), 400, "invalid_request");
    expectError(await putPart(a, id, upload_id, 0, new Uint8Array(10)), 400, "invalid_request");
    // Declared right, streamed short: refused and not recorded.
    const short = new ReadableStream({ start: (c) => (c.enqueue(new Uint8Array(5)), c.close()) });
    expectError(await putPart(a, id, upload_id, 2, short, 10), 400, "invalid_request");
    expect((await stored(id)).parts).toBe(0);
    expectError(await complete(a, id, upload_id), 400, "invalid_request");

    // Aborted: its parts and record go, and it takes nothing more.
    expect((await putPart(a, id, upload_id, 2, new Uint8Array(10))).status).toBe(200);
    const aborted = await call("DELETE", `/conversations/${id}/media/uploads/${upload_id}`, { token: a.token });
    expect(aborted.status).toBe(204);
    expectError(await putPart(a, id, upload_id, 1, new Uint8Array(PART)), 404, "not_found");
    expectError(await complete(a, id, upload_id), 404, "not_found");
    expect(await stored(id)).toEqual({ objects: [], rows: [], parts: 0 });
  });

  it("lets only the device that began an upload continue it", async () => {
    const a = await user();
    const id = await group(a, []);
    const other = (await call("POST", "/auth/login", { body: { handle: a.handle, password: "correct horse" } })).json;
    const { upload_id } = (await begin(a, id, 10)).json;
    expectError(await putPart(other, id, upload_id, 1, new Uint8Array(10)), 403, "forbidden");
    expectError(await complete(other, id, upload_id), 403, "forbidden");
    expectError(await call("DELETE", `/conversations/${id}/media/uploads/${upload_id}`, { token: other.token }), 403, "forbidden");
    expectError(await putPart(a, id, "mu_nonsense", 1, new Uint8Array(10)), 404, "not_found");
    expect((await putPart(a, id, upload_id, 1, new Uint8Array(10))).status).toBe(200);
    expect((await complete(a, id, upload_id)).status).toBe(201);
  });
});

describe("downloads", () => {
  it("answers Range with 206 and If-None-Match with 304", async () => {
    const a = await user();
    const id = await group(a, []);
    const bytes = randomBytes(1000);
    const { media_id } = (await upload(a, id, bytes, "audio/mpeg")).json;
    const etag = (await download(a, id, media_id)).headers.get("etag")!;

    for (const [range, from, to] of [
      ["bytes=10-19", 10, 19],
      ["bytes=990-", 990, 999],
      ["bytes=-5", 995, 999],
      ["bytes=900-5000", 900, 999],
      ["bytes=-5000", 0, 999],
    ] as const) {
      const res = await download(a, id, media_id, { range });
      expect(res.status, range).toBe(206);
      expect(res.headers.get("content-range"), range).toBe(`bytes ${from}-${to}/1000`);
      expect(res.headers.get("content-length"), range).toBe(String(to - from + 1));
      expect(res.headers.get("etag")).toBe(etag);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes.slice(from, to + 1));
    }
    const past = await download(a, id, media_id, { range: "bytes=1000-" });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe("bytes */1000");
    expect((await jsonOf(past)).error.code).toBe("invalid_request");
    // Ranges not served as such (several, other units) get the whole file.
    const several = await download(a, id, media_id, { range: "bytes=0-1,5-6" });
    expect(several.status).toBe(200);
    expect((await several.arrayBuffer()).byteLength).toBe(1000);

    for (const header of [etag, `W/${etag}`, `"nope", ${etag}`, "*"]) {
      const res = await download(a, id, media_id, { "if-none-match": header });
      expect(res.status, header).toBe(304);
      expect(res.headers.get("etag")).toBe(etag);
      expect(res.headers.get("content-security-policy")).toBe("sandbox");
      expect(await res.text()).toBe("");
    }
    const changed = await download(a, id, media_id, { "if-none-match": '"other"' });
    expect(changed.status).toBe(200);
    expect((await changed.arrayBuffer()).byteLength).toBe(1000);
  });

  it("refuses outsiders and removed members, and media of another conversation", async () => {
    const [a, b, c] = await Promise.all([user(), user(), user()]);
    const id = await group(a, [b]);
    const elsewhere = await group(a, [c]);
    const { media_id } = (await upload(a, id, randomBytes(100))).json;
    const foreign = (await upload(a, elsewhere, randomBytes(100))).json.media_id;

    expect((await download(b, id, media_id)).status).toBe(200);
    const outsider = await download(c, id, media_id);
    expectError({ status: outsider.status, json: await jsonOf(outsider) }, 403, "forbidden");
    expectError(await upload(c, id, randomBytes(10)), 403, "forbidden");
    expectError(await begin(c, id, 10), 403, "forbidden");
    const unauthenticated = await download({ token: "" } as Session, id, media_id);
    expect(unauthenticated.status).toBe(401);

    // Another conversation's media is not found here, whoever asks; nor is a malformed id.
    const crossed = await download(a, id, foreign);
    expectError({ status: crossed.status, json: await jsonOf(crossed) }, 404, "not_found");
    expect((await download(a, id, "md_../../x")).status).toBe(404);
    expectError(await sendMedia(a, id, foreign), 400, "invalid_request");

    // Removed: no more downloads or uploads.
    expect((await call("DELETE", `/conversations/${id}/members/${b.user_id}`, { token: a.token })).status).toBe(204);
    const removed = await download(b, id, media_id);
    expectError({ status: removed.status, json: await jsonOf(removed) }, 403, "forbidden");
    expectError(await upload(b, id, randomBytes(10)), 403, "forbidden");
  });
});

describe("media messages", () => {
  it("must name media completed in the same conversation, once; the list shows them", async () => {
    const [a, b] = await Promise.all([user(), user()]);
    const id = await group(a, [b]);
    expectError(await sendMedia(a, id, undefined), 400, "invalid_request");
    expectError(await sendMedia(a, id, "md_aaaaaaaaaaaaaaaaaaaaaaaaaa"), 400, "invalid_request");
    const pending = (await begin(a, id, 10)).json;
    expectError(await sendMedia(a, id, pending.media_id), 400, "invalid_request");

    const { media_id } = (await upload(a, id, randomBytes(100), "image/jpeg")).json;
    const sent = await sendMedia(a, id, media_id, "photo-1");
    expect(sent.status).toBe(201);
    expect(sent.json).toMatchObject({ kind: "media", media_id, content: "a caption", seq: 1 });
    expect((await sendMedia(a, id, media_id, "photo-1")).status).toBe(200); // a repeat
    expectError(await sendMedia(b, id, media_id), 400, "invalid_request"); // already attached

    const history = await call("GET", `/conversations/${id}/messages`, { token: b.token });
    expect(history.json.messages).toEqual([expect.objectContaining({ kind: "media", media_id, seq: 1 })]);
    await eventually(async () => {
      const entry = (await list(b)).json.conversations.find((c: { conversation_id: string }) => c.conversation_id === id);
      expect(entry.last_message).toMatchObject({ kind: "media", media_id, seq: 1 });
      expect(entry.unread_count).toBe(1);
    });
  });

  it("deletes media no message names and uploads not completed, from the alarm; keeps what a message names", async () => {
    const a = await user();
    const id = await group(a, []);
    const kept = (await upload(a, id, randomBytes(100))).json.media_id;
    expect((await sendMedia(a, id, kept)).status).toBe(201);
    const orphan = (await upload(a, id, randomBytes(100))).json.media_id;
    const unfinished = (await begin(a, id, PART + 1)).json;
    expect((await putPart(a, id, unfinished.upload_id, 2, new Uint8Array(1))).status).toBe(200);
    expect((await stored(id)).rows).toHaveLength(3);

    // 24 h later, as far as the rows know.
    await runInDurableObject(stub(id), (_, state) => {
      state.storage.sql.exec("UPDATE media SET expires_at = 1 WHERE expires_at IS NOT NULL");
    });
    await runDurableObjectAlarm(stub(id));
    expect(await stored(id)).toEqual({ objects: [`media/${id}/${kept}`], rows: [{ media_id: kept, state: "complete" }], parts: 0 });
    expect((await download(a, id, orphan)).status).toBe(404);
    expectError(await putPart(a, id, unfinished.upload_id, 1, new Uint8Array(PART)), 404, "not_found");
    expectError(await sendMedia(a, id, orphan), 400, "invalid_request");
  });

  it("in an encrypted (mls) conversation, an encrypted message carries the media_id (the file key inside it)", async () => {
    const a = await user();
    const res = await call("POST", "/conversations", { token: a.token, body: { type: "group", name: "secret", members: [], encryption: "mls" } });
    const id = res.json.conversation_id as string;
    const { media_id } = (await upload(a, id, randomBytes(64))).json;
    expectError(await sendMedia(a, id, media_id), 400, "invalid_request"); // only kind "encrypted" here
    const sent = await sendMedia(a, id, media_id, "enc-1", "encrypted");
    expect(sent.status).toBe(201);
    expect(sent.json).toMatchObject({ kind: "encrypted", media_id });
    await runInDurableObject(stub(id), (_, state) => {
      expect(state.storage.sql.exec("SELECT message_seq, expires_at FROM media").toArray()).toEqual([{ message_seq: sent.json.seq, expires_at: null }]);
    });
  });

  it("deleteMediaOfMessage erases the media of a deleted message", async () => {
    const a = await user();
    const id = await group(a, []);
    const { media_id } = (await upload(a, id, randomBytes(100))).json;
    const { seq } = (await sendMedia(a, id, media_id)).json;
    await runInDurableObject<Conversation, void>(stub(id), async (instance) => {
      await (instance as unknown as { media: { deleteMediaOfMessage(seq: number): Promise<void> } }).media.deleteMediaOfMessage(seq);
    });
    expect(await stored(id)).toEqual({ objects: [], rows: [], parts: 0 });
    expect((await download(a, id, media_id)).status).toBe(404);
  });

  it("joins an upload in parts at the single limit's boundary and sends it", async () => {
    const a = await user();
    const id = await group(a, []);
    const bytes = randomBytes(SINGLE + 1);
    const { completed, media_id } = await uploadInParts(a, id, bytes);
    expect(completed.json.sha256).toBe(await sha256(bytes));
    expect((await sendMedia(a, id, media_id)).status).toBe(201);
  });
});
