/**
 * Media: CONTRACT.md section 9. The Worker streams bytes between the client and R2 (the
 * MEDIA binding); the conversation object records each upload first, so that whatever
 * happens to the bytes is cleaned up (objects/media.ts). Bodies here are not JSON and
 * skip the 256 KiB body limit; their own limits are MAX_MEDIA_SINGLE_BYTES and MAX_MEDIA_BYTES.
 */
import { type Context, Hono } from "hono";
import { mediaKey } from "../../objects/media";
import { BeginUploadBody, ContentType, MEDIA_ID_PATTERN, UPLOAD_ID_PATTERN, type MediaInfo } from "../../protocol";
import { MediaSchema, PartStored, UploadStartedSchema } from "../../protocol/responses";
import { ApiError, unwrap } from "../errors";
import { parse, readJson } from "../lib/body";
import { limits } from "../../shared/config";
import { newId } from "../../shared/ids";
import { declaredLength, guardBody, lengthMismatch, mediaHeaders, noneMatchHits, parseRange, sha256Of } from "../lib/media";
import { memberConversation } from "../lib/membership";
import { conversationStub } from "../../shared/stubs";
import { authOnce } from "../middleware/auth";
import { describeRoute, errors, json, jsonBody, pathParameter } from "../openapi/describe";
import type { AppEnv } from "../types";

export const media = new Hono<AppEnv>();
media.use("/conversations/:id/media", authOnce);
media.use("/conversations/:id/media/*", authOnce);

const config = (env: Env) => limits(env);
const member = (c: Context<AppEnv>) => memberConversation(c.env, c.req.param("id") ?? "", c.get("auth").userId);

const uploadId = (c: Context<AppEnv>): string => {
  const id = c.req.param("upload_id") ?? "";
  if (!UPLOAD_ID_PATTERN.test(id)) throw new ApiError("not_found", "no such upload");
  return id;
};

const idParam = pathParameter("id", "The conversation");
const uploadParam = pathParameter("upload_id", "The upload, from POST …/media/uploads");
const rawBody = (description: string) => ({
  required: true,
  description,
  content: { "*/*": { schema: { type: "string" as const, format: "binary", contentMediaType: "application/octet-stream" } } },
});
const lengthHeader = {
  name: "content-length",
  in: "header" as const,
  required: true,
  description: "The body's exact length in bytes (a body of another length is refused with 400 and nothing is stored)",
  schema: { type: "integer" as const, minimum: 0 },
};

// ---- one request ---------------------------------------------------------------------

const singleDoc = describeRoute({
  operationId: "uploadMedia",
  tags: ["media"],
  summary: "Upload a file in one request (up to MAX_MEDIA_SINGLE_BYTES, 32 MiB)",
  description:
    "The raw body, with the file's content-type (application/octet-stream when absent) and its content-length. " +
    "Streamed to R2 and hashed on the way, never held whole. The media is deleted 24 h after upload unless a message names it.",
  parameters: [idParam, lengthHeader],
  requestBody: rawBody("The file's bytes"),
  responses: {
    201: json("The stored media", MediaSchema),
    ...errors("invalid_request", "unauthorized", "forbidden", "not_found", "too_large"),
  },
});
media.post("/conversations/:id/media", singleDoc, async (c) => {
  const id = await member(c);
  const size = declaredLength(c.req.raw);
  const max = config(c.env).maxMediaSingleBytes;
  if (size > max) throw new ApiError("too_large", `a one-request upload takes at most ${max} bytes; larger files go in parts (POST …/media/uploads)`);
  const contentType = parse(ContentType, c.req.header("content-type") ?? "application/octet-stream");
  const auth = c.get("auth");
  const stub = conversationStub(c.env, id);
  const mediaId = newId("md");
  const { key } = unwrap(await stub.mediaBegin(auth, { mediaId, size, contentType }));
  const body = guardBody(c.req.raw.body, size, { hash: true });
  try {
    await c.env.MEDIA.put(key, body.stream, { httpMetadata: { contentType } });
  } catch (err) {
    await stub.mediaDiscard(auth, mediaId);
    if (body.seen() !== size) throw lengthMismatch(size, body.seen());
    throw err;
  }
  return c.json(unwrap(await stub.mediaUploaded(auth, mediaId, await body.sha256())), 201);
});

// ---- in parts ------------------------------------------------------------------------

const beginDoc = describeRoute({
  operationId: "beginMediaUpload",
  tags: ["media"],
  summary: "Begin an upload in parts (files up to MAX_MEDIA_BYTES, 100 MiB)",
  description:
    "Answers the part size (MEDIA_PART_BYTES) and count: every part is part_size bytes but the last. " +
    "Only the calling device may continue the upload; one not completed within 24 h is aborted.",
  parameters: [idParam],
  requestBody: jsonBody(BeginUploadBody),
  responses: {
    201: json("The upload", UploadStartedSchema),
    ...errors("invalid_request", "unauthorized", "forbidden", "not_found", "too_large"),
  },
});
media.post("/conversations/:id/media/uploads", beginDoc, async (c) => {
  const id = await member(c);
  const body = await readJson(c, BeginUploadBody);
  const { maxMediaBytes, mediaPartBytes } = config(c.env);
  if (body.size > maxMediaBytes) throw new ApiError("too_large", `media takes at most ${maxMediaBytes} bytes`);
  const partCount = Math.ceil(body.size / mediaPartBytes);
  const mediaId = newId("md");
  const upload = newId("mu");
  const multipart = { uploadId: upload, partSize: mediaPartBytes, partCount };
  unwrap(await conversationStub(c.env, id).mediaBegin(c.get("auth"), { mediaId, size: body.size, contentType: body.content_type, multipart }));
  return c.json({ upload_id: upload, media_id: mediaId, part_size: mediaPartBytes, part_count: partCount }, 201);
});

const partDoc = describeRoute({
  operationId: "uploadMediaPart",
  tags: ["media"],
  summary: "Upload part n of an upload (repeatable: the last write wins)",
  description: "Parts may come in any order and in parallel. Part n is part_size bytes, the last one the rest.",
  parameters: [idParam, uploadParam, pathParameter("n", "The part number, 1 to part_count"), lengthHeader],
  requestBody: rawBody("The part's bytes"),
  responses: {
    200: json("Stored", PartStored),
    ...errors("invalid_request", "unauthorized", "forbidden", "not_found", "too_large"),
  },
});
media.put("/conversations/:id/media/uploads/:upload_id/parts/:n", partDoc, async (c) => {
  const id = await member(c);
  const upload = uploadId(c);
  const n = c.req.param("n");
  if (!/^\d{1,5}$/.test(n)) throw new ApiError("invalid_request", "part: must be a part number");
  const part = Number(n);
  const size = declaredLength(c.req.raw);
  const auth = c.get("auth");
  const stub = conversationStub(c.env, id);
  const target = unwrap(await stub.mediaPartTarget(auth, upload, part));
  if (size > target.size) throw new ApiError("too_large", `part ${part} is ${target.size} bytes, not ${size}`);
  if (size < target.size) throw new ApiError("invalid_request", `part ${part} is ${target.size} bytes, not ${size}`);
  const body = guardBody(c.req.raw.body, size, { hash: false });
  let stored: R2UploadedPart;
  try {
    stored = await c.env.MEDIA.resumeMultipartUpload(target.key, target.r2UploadId).uploadPart(part, body.stream);
  } catch (err) {
    if (body.seen() !== size) throw lengthMismatch(size, body.seen());
    throw err;
  }
  unwrap(await stub.mediaPartStored(auth, upload, part, stored.etag));
  return c.json({ part }, 200);
});

const completeDoc = describeRoute({
  operationId: "completeMediaUpload",
  tags: ["media"],
  summary: "Complete an upload once every part is in",
  description:
    "Joins the parts into one R2 object, then reads it back once, streamed, for its SHA-256 (parts may arrive in any " +
    "order, so the whole file's hash cannot be taken on the way in). Repeatable: a completed upload answers its media again.",
  parameters: [idParam, uploadParam],
  responses: {
    201: json("The stored media", MediaSchema),
    ...errors("invalid_request", "unauthorized", "forbidden", "not_found"),
  },
});
media.post("/conversations/:id/media/uploads/:upload_id/complete", completeDoc, async (c) => {
  const id = await member(c);
  const upload = uploadId(c);
  const auth = c.get("auth");
  const stub = conversationStub(c.env, id);
  const plan = unwrap(await stub.mediaCompletion(auth, upload));
  if (plan.done) return c.json(plan.done satisfies MediaInfo, 201);
  let object: R2Object | null;
  try {
    object = await c.env.MEDIA.resumeMultipartUpload(plan.key, plan.r2UploadId).complete(plan.parts);
  } catch (err) {
    // Completed by an earlier attempt that did not get to record it, or refused by R2.
    object = await c.env.MEDIA.head(plan.key);
    if (!object) throw new ApiError("invalid_request", `the parts could not be joined (${String(err)}); upload them again`);
  }
  if (object.size !== plan.size) throw new ApiError("internal", `joined ${object.size} bytes, ${plan.size} expected`);
  const stored = await c.env.MEDIA.get(plan.key);
  if (!stored) throw new ApiError("internal", "the joined object is gone");
  const sha256 = await sha256Of(stored.body);
  return c.json(unwrap(await stub.mediaCompleted(auth, upload, sha256)), 201);
});

const abortDoc = describeRoute({
  operationId: "abortMediaUpload",
  tags: ["media"],
  summary: "Abort an upload in parts; its parts are deleted",
  parameters: [idParam, uploadParam],
  responses: { 204: { description: "Aborted" }, ...errors("invalid_request", "unauthorized", "forbidden", "not_found") },
});
media.delete("/conversations/:id/media/uploads/:upload_id", abortDoc, async (c) => {
  const id = await member(c);
  unwrap(await conversationStub(c.env, id).mediaAbort(c.get("auth"), uploadId(c)));
  return c.body(null, 204);
});

// ---- download ------------------------------------------------------------------------

const binary = (description: string) => ({ description, content: { "*/*": { schema: { type: "string" as const, format: "binary" } } } });
const getDoc = describeRoute({
  operationId: "getMedia",
  tags: ["media"],
  summary: "The bytes of a completed media (members only)",
  description:
    "With etag, content-length and accept-ranges: bytes; every answer carries x-content-type-options: nosniff and " +
    "content-security-policy: sandbox, and types other than image/*, video/*, audio/* content-disposition: attachment. " +
    "Read from R2 without waking the conversation: the key is made from the conversation and media ids.",
  parameters: [
    idParam,
    pathParameter("media_id", "The media"),
    { name: "range", in: "header", required: false, description: "One range, bytes=first-last, first- or -suffix", schema: { type: "string" } },
    { name: "if-none-match", in: "header", required: false, description: "An etag from an earlier answer", schema: { type: "string" } },
  ],
  responses: {
    200: binary("The bytes"),
    206: binary("The requested range, with content-range"),
    304: { description: "Not modified: the If-None-Match etag is current" },
    416: { description: "The range starts past the end; content-range names the size. The contract's error body, code invalid_request" },
    ...errors("unauthorized", "forbidden", "not_found"),
  },
});
media.get("/conversations/:id/media/:media_id", getDoc, async (c) => {
  const id = await member(c);
  const mediaId = c.req.param("media_id");
  if (!MEDIA_ID_PATTERN.test(mediaId)) throw new ApiError("not_found", "no such media");
  const key = mediaKey(id, mediaId);
  const range = parseRange(c.req.header("range"));
  const ifNoneMatch = c.req.header("if-none-match");
  const gone = () => new ApiError("not_found", "no such media");

  // A conditional or ranged request needs the object's etag and size before its bytes.
  const head = range || ifNoneMatch ? await c.env.MEDIA.head(key) : null;
  if ((range || ifNoneMatch) && !head) throw gone();
  if (head && noneMatchHits(ifNoneMatch, head.httpEtag)) {
    return new Response(null, { status: 304, headers: mediaHeaders(contentTypeOf(head), head.httpEtag) });
  }
  let span: { offset: number; length: number } | null = null;
  if (range && head) {
    span = resolveRange(range, head.size);
    if (!span) {
      const headers = mediaHeaders("application/json", head.httpEtag);
      headers.set("content-range", `bytes */${head.size}`);
      headers.delete("content-disposition");
      const body = { error: { code: "invalid_request", message: `range outside the media's ${head.size} bytes` } };
      return new Response(JSON.stringify(body), { status: 416, headers });
    }
  }
  const object = await c.env.MEDIA.get(key, span ? { range: span } : {});
  if (!object) throw gone();
  const headers = mediaHeaders(contentTypeOf(object), object.httpEtag);
  if (!span) {
    headers.set("content-length", String(object.size));
    return new Response(object.body, { status: 200, headers });
  }
  headers.set("content-length", String(span.length));
  headers.set("content-range", `bytes ${span.offset}-${span.offset + span.length - 1}/${object.size}`);
  return new Response(object.body, { status: 206, headers });
});

const contentTypeOf = (object: R2Object) => object.httpMetadata?.contentType ?? "application/octet-stream";

/** The bytes a range names within `size`, or null when it starts past the end (416). */
function resolveRange(range: R2Range, size: number): { offset: number; length: number } | null {
  if ("suffix" in range && range.suffix !== undefined) {
    if (size === 0) return null;
    const length = Math.min(range.suffix, size);
    return { offset: size - length, length };
  }
  const offset = "offset" in range && range.offset !== undefined ? range.offset : 0;
  if (offset >= size) return null;
  const length = "length" in range && range.length !== undefined ? Math.min(range.length, size - offset) : size - offset;
  return { offset, length };
}
