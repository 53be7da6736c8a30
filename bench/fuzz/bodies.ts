/**
 * Mutation of JSON request bodies (and WebSocket frames, which are bodies too): from a
 * valid body described field by field, one hostile variant and what it should get.
 */
import type { Rng } from "../lib/prng.ts";
import { badJson, invalidUtf8, LONE_SURROGATES, nestedText, NUMBER_TOKENS, oddText, Raw, toJson, wrongType } from "./values.ts";

/** How a body variant should be answered: like the valid body, like it or with one of `statuses`, or with `statuses`. */
export type Outcome = { kind: "ok" } | { kind: "okOr"; statuses: number[] } | { kind: "err"; statuses: number[] };

export const OK: Outcome = { kind: "ok" };
export const err = (...statuses: number[]): Outcome => ({ kind: "err", statuses });
export const okOr = (...statuses: number[]): Outcome => ({ kind: "okOr", statuses });

export interface Field {
  name: string;
  required: boolean;
  type: "string" | "number" | "array" | "object";
  valid: () => unknown;
  /** A value of the right type that the contract refuses (400); absent when there is none. */
  bad?: () => unknown;
  /** A value over a limit, and its answer. */
  huge?: () => { value: unknown; outcome: Outcome };
  /** Odd but well-formed unicode in this field (strings only). */
  odd?: Outcome;
  /** Lone surrogates in this field (strings only). */
  lone?: Outcome;
}

export interface Mutated {
  variant: string;
  outcome: Outcome;
  /** The text (or bytes, or a streamed size) to send. */
  body: string | Uint8Array | { streamBytes: number };
  /** The parsed value the server sees, when it is an object we built. */
  value?: Record<string, unknown>;
  contentType?: string | null;
}

export interface MutateOptions {
  /** Extra keys to add for the `extra` variant (never a field name). */
  extras?: () => Record<string, unknown>;
  /** Leave out variants that only make sense for HTTP (content type, chunked, bytes). */
  frame?: boolean;
  /** Keys every variant keeps as they are (e.g. a frame's `type`). */
  fixed?: Record<string, unknown>;
}

const WEIGHTS: [string, number][] = [
  ["valid", 3],
  ["extra", 2],
  ["missing", 2],
  ["wrongType", 3],
  ["badValue", 2],
  ["huge", 2],
  ["odd", 1.5],
  ["lone", 1],
  ["numbers", 1],
  ["badJson", 3],
  ["utf8", 0.7],
  ["deep", 1],
  ["deepExtra", 1],
  ["nonObject", 1],
  ["empty", 0.6],
  ["oversize", 0.8],
  ["dupKeys", 1],
  ["contentType", 0.7],
  ["chunked", 0.25],
];

const FRAME_ONLY_SKIP = new Set(["utf8", "contentType", "chunked"]);

export function mutate(rng: Rng, fields: Field[], opts: MutateOptions = {}): Mutated {
  const fixed = opts.fixed ?? {};
  const base: Record<string, unknown> = { ...fixed };
  for (const f of fields) if (f.required || rng.chance(0.5)) base[f.name] = f.valid();

  const applicable = WEIGHTS.filter(([v]) => {
    if (opts.frame && FRAME_ONLY_SKIP.has(v)) return false;
    if (v === "missing") return fields.some((f) => f.required);
    if (v === "badValue") return fields.some((f) => f.bad);
    if (v === "huge") return fields.some((f) => f.huge);
    if (v === "odd") return fields.some((f) => f.type === "string" && f.odd);
    if (v === "lone") return fields.some((f) => f.type === "string" && f.lone);
    if (v === "wrongType" || v === "numbers" || v === "dupKeys") return fields.length > 0;
    return true;
  });
  const variant = rng.weighted(applicable);
  const json = (value: Record<string, unknown>, outcome: Outcome, name = variant): Mutated => ({ variant: name, outcome, body: toJson(value), value });

  switch (variant) {
    case "valid":
      return json(base, OK);
    case "extra": {
      const extras = opts.extras?.() ?? { unexpected: true };
      for (const f of fields) delete extras[f.name];
      for (const k of Object.keys(fixed)) delete extras[k];
      const value = { ...base, ...extras };
      let body = toJson(value);
      if (rng.chance(0.25)) body = `{"__proto__":{"admin":true,"role":"admin"},${body.slice(1)}`;
      if (rng.chance(0.15)) body = `{"constructor":{"prototype":{"admin":true}},${body.slice(1)}`;
      return { variant, outcome: OK, body, value };
    }
    case "missing": {
      const f = rng.pick(fields.filter((x) => x.required));
      const value = { ...base };
      delete value[f.name];
      return json(value, err(400), `missing:${f.name}`);
    }
    case "wrongType": {
      const f = rng.pick(fields);
      const value = { ...base, [f.name]: wrongType(rng, f.type === "number" ? "number" : f.type) };
      return json(value, err(400), `wrongType:${f.name}`);
    }
    case "badValue": {
      const f = rng.pick(fields.filter((x) => x.bad));
      return json({ ...base, [f.name]: f.bad!() }, err(400), `badValue:${f.name}`);
    }
    case "huge": {
      const f = rng.pick(fields.filter((x) => x.huge));
      const { value, outcome } = f.huge!();
      return json({ ...base, [f.name]: value }, outcome, `huge:${f.name}`);
    }
    case "odd": {
      const f = rng.pick(fields.filter((x) => x.type === "string" && x.odd));
      const v = f.valid();
      const text = typeof v === "string" && rng.chance(0.6) ? `${v}${oddText(rng)}` : oddText(rng);
      return json({ ...base, [f.name]: text }, f.odd!, `odd:${f.name}`);
    }
    case "lone": {
      const f = rng.pick(fields.filter((x) => x.type === "string" && x.lone));
      const v = f.valid();
      const text = `${typeof v === "string" ? v : ""}${rng.pick(LONE_SURROGATES)}`;
      return json({ ...base, [f.name]: text }, f.lone!, `lone:${f.name}`);
    }
    case "numbers": {
      const numeric = fields.filter((x) => x.type === "number");
      const f = numeric.length ? rng.pick(numeric) : rng.pick(fields);
      const token = rng.pick(NUMBER_TOKENS);
      return json({ ...base, [f.name]: new Raw(token.text) }, err(400), `number:${f.name}=${token.text}`);
    }
    case "badJson":
      return { variant, outcome: err(400), body: badJson(rng, toJson(base)) };
    case "utf8":
      return { variant, outcome: okOr(400), body: invalidUtf8(toJson(base)) };
    case "deep": {
      const depth = rng.pick([1000, 10_000, 10_000, 50_000]);
      const body = nestedText(depth, rng.pick(["array", "object"] as const));
      return { variant: `deep:${depth}`, outcome: body.length > 256 * 1024 ? err(413) : err(400), body };
    }
    case "deepExtra": {
      const depth = rng.pick([1000, 10_000, 10_000, 40_000]);
      const text = toJson(base);
      const deep = nestedText(depth, rng.pick(["array", "object"] as const));
      return { variant: `deepExtra:${depth}`, outcome: OK, body: `${text.slice(0, -1)}${text.length > 2 ? "," : ""}"deep_extra":${deep}}`, value: base };
    }
    case "nonObject":
      return { variant, outcome: err(400), body: rng.pick(["null", "[]", "123", '"text"', "true", "false", "[{}]", "-0", toJson([base])]) };
    case "empty":
      return { variant, outcome: err(400), body: "" };
    case "oversize": {
      const pad = "p".repeat(rng.int(262_145, 400_000));
      return { variant, outcome: err(413), body: toJson({ ...base, padding: pad }), value: { ...base } };
    }
    case "dupKeys": {
      const f = rng.pick(fields);
      const bad = toJson({ v: wrongType(rng, f.type) }).slice(5, -1);
      const text = toJson(base);
      if (f.name in base && rng.chance(0.5)) {
        // the valid value comes last and wins
        return { variant: `dupKeys:${f.name}:validLast`, outcome: OK, body: `{"${f.name}":${bad},${text.slice(1)}`, value: base };
      }
      return { variant: `dupKeys:${f.name}:badLast`, outcome: err(400), body: `${text.slice(0, -1)}${text.length > 2 ? "," : ""}"${f.name}":${bad}}` };
    }
    case "contentType": {
      const ct = rng.pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", null, "application/json; charset=latin1", "application/xml"]);
      return { variant: `contentType:${ct}`, outcome: okOr(400), body: toJson(base), value: base, contentType: ct };
    }
    case "chunked":
      return { variant, outcome: err(413), body: { streamBytes: rng.int(300_000, 1_000_000) } };
  }
  throw new Error(`unknown variant ${variant}`);
}

/** Statuses to accept: the outcome applied to what the valid body would get (`ok`), plus target errors that may come first. */
export function statusesFor(outcome: Outcome, ok: number[]): number[] {
  const targetErrors = ok.filter((s) => s >= 400);
  switch (outcome.kind) {
    case "ok":
      return [...ok];
    case "okOr":
      return [...new Set([...ok, ...outcome.statuses])];
    case "err":
      return [...new Set([...outcome.statuses, ...targetErrors])];
  }
}
