/** GET /v1/openapi.json: CONTRACT.md section 15. Structural checks of OpenAPI 3.1, written out here. */
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { AddMembersBody, BeginUploadBody, CreateConversationBody, ERROR_STATUS, LoginBody, MarkerBody, PushSubscriptionBody, RegisterBody, SendBody } from "../../protocol";
import { app } from "../../worker/app";
import { eventually } from "./api-helpers";
import { call, group, register, send } from "./helpers";

type Json = any;
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

let doc: Json;
beforeAll(async () => {
  const res = await call("GET", "/openapi.json");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  doc = res.json;
});

/** `#/a/b~1c` → doc.a["b/c"], or undefined. */
function resolvePointer(ref: string): Json {
  expect(ref, "only local references").toMatch(/^#\//);
  let node: Json = doc;
  for (const raw of ref.slice(2).split("/")) {
    const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    if (node === null || typeof node !== "object" || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

const deref = (node: Json): Json => (node && typeof node === "object" && "$ref" in node ? deref(resolvePointer(node.$ref)) : node);

/** Every `$ref` in the tree (arrays included: Object.entries walks their items). */
function* refsIn(node: Json, where = "#"): Generator<[string, string]> {
  if (node === null || typeof node !== "object") return;
  for (const [key, value] of Object.entries(node)) {
    if (key === "$ref" && typeof value === "string") yield [where, value];
    else yield* refsIn(value, `${where}/${key}`);
  }
}

function* operations(): Generator<[string, string, Json]> {
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    for (const method of METHODS) if (item[method]) yield [path, method, item[method]];
  }
}

describe("GET /v1/openapi.json", () => {
  it("is served without authentication, as OpenAPI 3.1", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(typeof doc.info?.title).toBe("string");
    expect(typeof doc.info?.version).toBe("string");
    expect(Object.keys(doc.paths).length).toBeGreaterThan(10);
    for (const path of Object.keys(doc.paths)) expect(path).toMatch(/^\/v1\//);
  });

  it("has every $ref resolving inside the document", () => {
    const refs = [...refsIn(doc)];
    expect(refs.length).toBeGreaterThan(20);
    for (const [where, ref] of refs) expect.soft(resolvePointer(ref), `${where} → ${ref}`).toBeDefined();
  });

  it("gives every operation a unique operationId, responses with descriptions, and its path parameters", () => {
    const ids = new Set<string>();
    for (const [path, method, op] of operations()) {
      const name = `${method.toUpperCase()} ${path}`;
      expect.soft(op.operationId, name).toEqual(expect.any(String));
      expect.soft(ids.has(op.operationId), `${name}: duplicate operationId ${op.operationId}`).toBe(false);
      ids.add(op.operationId);

      const responses = Object.entries<Json>(op.responses ?? {});
      expect.soft(responses.length, `${name}: responses`).toBeGreaterThan(0);
      for (const [status, response] of responses) {
        expect.soft(status, name).toMatch(/^([1-5]\d\d|[1-5]XX|default)$/);
        expect.soft(typeof deref(response)?.description, `${name} ${status}: description`).toBe("string");
      }

      const params = (op.parameters ?? []).map(deref);
      for (const p of params) expect.soft(["query", "header", "path", "cookie"], `${name}: ${p.name}`).toContain(p.in);
      for (const [, param] of path.matchAll(/\{([^}]+)\}/g)) {
        const declared = params.find((p: Json) => p.in === "path" && p.name === param);
        expect.soft(declared?.required, `${name}: path parameter ${param}`).toBe(true);
      }
      for (const requirement of op.security ?? doc.security ?? []) {
        for (const scheme of Object.keys(requirement)) expect.soft(doc.components.securitySchemes[scheme], `${name}: ${scheme}`).toBeDefined();
      }
    }
  });

  it("documents every route of the Hono app with its method", () => {
    const concrete = new Set(app.routes.filter((r) => r.method !== "ALL").map((r) => r.path));
    const routes = new Set<string>();
    for (const r of app.routes) {
      // `use()` middleware: wildcards, or auth in front of a path that has its own methods.
      if (r.method === "ALL" && (r.path.endsWith("*") || concrete.has(r.path))) continue;
      routes.add(`${r.method} ${r.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`);
    }
    expect(routes.size).toBeGreaterThan(15);
    const documented = new Set([...operations()].map(([path, method]) => `${method.toUpperCase()} ${path}`));
    expect([...routes].filter((r) => !documented.has(r)), "routes missing from the document").toEqual([]);
    expect([...documented].filter((d) => !routes.has(d)), "documented operations with no route").toEqual([]);
  });

  it("declares bearer auth, and no security on the public routes", () => {
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.security).toEqual([{ bearer: [] }]);
    const open = ["GET /v1/health", "GET /v1/openapi.json", "POST /v1/auth/register", "POST /v1/auth/login", "GET /v1/push/vapid-public-key"];
    for (const [path, method, op] of operations()) {
      const name = `${method.toUpperCase()} ${path}`;
      if (open.includes(name)) expect.soft(op.security, name).toEqual([]);
      else expect.soft(op.security ?? doc.security, name).toContainEqual({ bearer: [] });
    }
  });

  it("takes request bodies from the schemas that validate them", () => {
    const bodies: [string, string, z.ZodType][] = [
      ["post", "/v1/auth/register", RegisterBody],
      ["post", "/v1/auth/login", LoginBody],
      ["post", "/v1/conversations", CreateConversationBody],
      ["post", "/v1/conversations/{id}/members", AddMembersBody],
      ["post", "/v1/conversations/{id}/messages", SendBody],
      ["post", "/v1/conversations/{id}/read", MarkerBody],
      ["post", "/v1/conversations/{id}/delivered", MarkerBody],
      ["post", "/v1/push/subscriptions", PushSubscriptionBody],
      ["post", "/v1/conversations/{id}/media/uploads", BeginUploadBody],
    ];
    for (const [method, path, schema] of bodies) {
      const body = deref(doc.paths[path]?.[method]?.requestBody);
      expect.soft(body?.required, `${path} body required`).toBe(true);
      const documented = deref(body?.content?.["application/json"]?.schema);
      const expected = z.toJSONSchema(schema, { io: "input" }) as Json;
      // Same shape: the object's fields, or each variant's of a union.
      const fields = (s: Json) => (s.oneOf ?? s.anyOf ?? [s]).map((v: Json) => ({ properties: Object.keys(deref(v).properties ?? {}), required: deref(v).required }));
      expect.soft(documented && fields(documented), path).toEqual(fields(expected));
    }
    // And a field's constraints come along.
    const register = deref(deref(doc.paths["/v1/auth/register"].post.requestBody).content["application/json"].schema);
    expect(register.properties.handle.pattern).toBe("^[a-z0-9_]{3,32}$");
    // Raw media bodies are documented as binary of any type, with their required content-length.
    for (const [method, path] of [["post", "/v1/conversations/{id}/media"], ["put", "/v1/conversations/{id}/media/uploads/{upload_id}/parts/{n}"]] as const) {
      const op = doc.paths[path][method];
      expect.soft(deref(op.requestBody).content["*/*"].schema, path).toMatchObject({ type: "string", format: "binary" });
      expect.soft(op.parameters.map(deref), path).toContainEqual(expect.objectContaining({ in: "header", name: "content-length", required: true }));
    }
  });

  it("documents query parameters from the query schemas", () => {
    const params = (path: string, method = "get") => (doc.paths[path][method].parameters ?? []).map(deref);
    const history = params("/v1/conversations/{id}/messages").filter((p: Json) => p.in === "query");
    expect(history.map((p: Json) => [p.name, p.required])).toEqual([
      ["after_seq", false],
      ["before_seq", false],
      ["limit", false],
    ]);
    expect(history[0].schema).toMatchObject({ type: "string", pattern: expect.any(String) });
    expect(history[2].description).toMatch(/1 to 200/);
    expect(params("/v1/conversations").map((p: Json) => p.name)).toEqual(["limit", "cursor"]);
    expect(params("/v1/users")).toContainEqual(expect.objectContaining({ name: "handle", in: "query", required: true }));
    expect(params("/v1/sync").filter((p: Json) => p.in === "query").map((p: Json) => p.name)).toEqual(["token", "ticket", "since"]);
  });

  it("documents the contract's error shape on every authenticated route", () => {
    const error = deref(doc.components.schemas.Error);
    expect(error.required).toEqual(["error"]);
    expect(deref(error.properties.error).properties.code.enum).toEqual(Object.keys(ERROR_STATUS));
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      const response = doc.components.responses[code];
      expect(response.description).toContain(String(status));
      expect(response.content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Error" });
    }
    expect(doc.components.responses.rate_limited.headers["retry-after"]).toBeDefined();
    for (const [path, method, op] of operations()) {
      if (op.security?.length === 0) continue;
      expect.soft(op.responses["401"], `${method} ${path}`).toEqual({ $ref: "#/components/responses/unauthorized" });
    }
  });

  it("describes the WebSocket endpoints as GET upgrades answering 101", () => {
    for (const path of ["/v1/sync", "/v1/conversations/{id}/ws"]) {
      const op = doc.paths[path].get;
      expect(op.responses["101"]).toBeDefined();
      expect(op.security).toEqual([{ bearer: [] }, { token_query: [] }, { ticket_query: [] }]);
      expect(op.parameters).toContainEqual(expect.objectContaining({ in: "header", name: "Upgrade", required: true }));
    }
    expect(doc.components.securitySchemes.token_query).toMatchObject({ type: "apiKey", in: "query", name: "token" });
  });

  it("documents response bodies that match what the server answers", async () => {
    const a = await register();
    const id = await group(a, []);
    const message = (await send(a, id, "openapi-1")).json;
    const conversation = (await call("GET", `/conversations/${id}`, { token: a.token })).json;
    const list = await eventually(async () => {
      const res = await call("GET", "/conversations", { token: a.token });
      expect(res.json.conversations[0]?.last_message?.seq).toBe(1);
      return res.json;
    });

    const schemaOf = (path: string, method: string, status: string) =>
      deref(deref(doc.paths[path][method].responses[status]).content["application/json"].schema);
    const expectShape = (schema: Json, value: Json, name: string) => {
      expect.soft(Object.keys(value).filter((k) => !(k in schema.properties)), `${name}: undocumented fields`).toEqual([]);
      expect.soft(schema.required.filter((k: string) => !(k in value)), `${name}: missing required fields`).toEqual([]);
    };
    expectShape(schemaOf("/v1/conversations/{id}/messages", "post", "201"), message, "Message");
    expectShape(schemaOf("/v1/conversations/{id}", "get", "200"), conversation, "Conversation");
    const page = schemaOf("/v1/conversations", "get", "200");
    expectShape(page, list, "ConversationPage");
    expectShape(deref(page.properties.conversations.items), list.conversations[0], "ConversationSummary");
  });
});
