/**
 * Hostile values: wrong types, edge numbers, unicode oddities, deep nesting, huge strings,
 * and raw (not JSON-serialisable) number tokens spliced into the JSON text.
 */
import type { Rng } from "../lib/prng.ts";

/** A marker replaced in the serialised JSON by a raw token such as `NaN` or `1e309`. */
export class Raw {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

export function nested(depth: number, kind: "array" | "object" = "array"): unknown {
  // Built iteratively: a recursive builder would overflow on the deep ones.
  let v: unknown = kind === "array" ? [] : {};
  for (let i = 0; i < depth; i++) v = kind === "array" ? [v] : { a: v };
  return v;
}

/** Deep nesting as JSON text, without building the object (JSON.stringify recurses). */
export function nestedText(depth: number, kind: "array" | "object" = "array"): string {
  return kind === "array" ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "0" + "}".repeat(depth);
}

export function wrongType(rng: Rng, not: "string" | "number" | "array" | "object" | "boolean"): unknown {
  const all: [string, () => unknown][] = [
    ["number", () => rng.pick([0, -1, 1.5, 42, 1e21])],
    ["string", () => rng.pick(["", "1", "null", "true", "[]"])],
    ["boolean", () => rng.pick([true, false])],
    ["null", () => null],
    ["array", () => rng.pick([[], [1], ["a", "b"], [null]])],
    ["object", () => rng.pick([{}, { a: 1 }, { type: "text" }])],
    ["nested", () => nested(rng.int(2, 40), rng.pick(["array", "object"] as const))],
  ];
  const choices = all.filter(([t]) => t !== not);
  return rng.pick(choices)[1]();
}

/** Raw number tokens; `valid` says whether the JSON stays valid, `value` what it parses to. */
export const NUMBER_TOKENS: { text: string; valid: boolean }[] = [
  { text: "NaN", valid: false },
  { text: "Infinity", valid: false },
  { text: "-Infinity", valid: false },
  { text: "1e309", valid: true }, // parses to Infinity
  { text: "-1e309", valid: true },
  { text: "-1", valid: true },
  { text: "9007199254740993", valid: true }, // 2^53 + 1, rounds to 2^53
  { text: "9007199254740992", valid: true },
  { text: "1.5", valid: true },
  { text: "1e-7", valid: true },
  { text: "0x10", valid: false },
  { text: "00", valid: false },
  { text: "+1", valid: false },
  { text: ".5", valid: false },
  { text: "1e400000", valid: true },
  { text: "-9223372036854775809", valid: true },
  { text: "18446744073709551616", valid: true },
];

/** Strings that are odd but well-formed Unicode: a server must store them exactly. */
export const ODD_TEXT = [
  "\u0000",
  "a\u0000b",
  "\ufeffbom",
  "\u202eright-to-left",
  "👨‍👩‍👧‍👦",
  "e\u0301".repeat(30),
  "\uffff\ufffe",
  "\u0085\u2028\u2029",
  "𝕳𝖊𝖑𝖑𝖔",
  "<script>alert(1)</script>",
  "'; DROP TABLE messages; --",
  "%s%n%x",
  "\\u0000",
  "\r\n\t",
  "{\"type\":\"send\"}",
  "null",
  "\u{10ffff}",
];

/** Ill-formed UTF-16 (lone surrogates), sent as JSON escapes. */
export const LONE_SURROGATES = ["\ud800", "\udfff", "x\udc00y", "\udc00\ud800", "ok\ud83d", "\ud83d\ud83d"];

export function oddText(rng: Rng): string {
  return rng.pick(ODD_TEXT);
}

export function isWellFormed(s: string): boolean {
  // String.prototype.isWellFormed (ES2024), spelled out for older libs.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

/** Serialises `value`, splicing in Raw tokens. */
export function toJson(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_k, v) => {
    if (v instanceof Raw) {
      raws.push(v.text);
      return `\u0001RAW${raws.length - 1}\u0001`;
    }
    return v;
  });
  return text.replace(/"\\u0001RAW(\d+)\\u0001"/g, (_m, i) => raws[Number(i)]!);
}

/** Malformed JSON texts, some built from a valid body. */
export function badJson(rng: Rng, valid: string): string {
  const variants: (() => string)[] = [
    () => valid.slice(0, Math.max(1, rng.int(1, valid.length - 1))),
    () => valid + ",",
    () => valid.replace(/"/g, "'"),
    () => valid.replace(/}$/, ",}"),
    () => `${valid}${valid}`,
    () => `// comment\n${valid}`,
    () => valid.replace(/:/, "="),
    () => "{",
    () => "}",
    () => "",
    () => " ",
    () => "undefined",
    () => "{'a':1}",
    () => '{"a":1,}',
    () => '{"a" 1}',
    () => "[1,2",
    () => '"unterminated',
    () => '{"a":"\u0001"}', // raw control character in a string
    () => '{"a":"\\x41"}',
    () => '{"a":"\\u12"}',
    () => "\u0000",
    () => "nul\u0000l",
    () => "{}".repeat(1000),
    () => "[".repeat(rng.int(1, 100)),
    () => "{".repeat(rng.int(1, 100)),
  ];
  return rng.pick(variants)();
}

/** Byte-level garbage: invalid UTF-8 inside an otherwise valid JSON body. */
export function invalidUtf8(valid: string): Uint8Array {
  const enc = new TextEncoder().encode(valid);
  const at = Math.max(1, enc.indexOf(0x22 /* " */, 1) + 1 || 1);
  const junk = [0xc0, 0x80, 0xff, 0xfe, 0xed, 0xa0, 0x80];
  const out = new Uint8Array(enc.length + junk.length);
  out.set(enc.subarray(0, at), 0);
  out.set(junk, at);
  out.set(enc.subarray(at), at + junk.length);
  return out;
}

export function randomBase32(rng: Rng, n = 26): string {
  return rng.string(n, "abcdefghijklmnopqrstuvwxyz234567");
}

/** Ids that are well-formed but name nothing that exists. */
export function ghostId(rng: Rng, prefix: "u" | "d" | "g" | "c" | "m"): string {
  return `${prefix}_${randomBase32(rng)}`;
}

/** Ids that cannot be anything. */
export function junkId(rng: Rng): string {
  return rng.pick([
    "",
    " ",
    "null",
    "undefined",
    "0",
    "-1",
    "g_",
    "G_" + "A".repeat(26),
    "g_" + "a".repeat(25),
    "g_" + "a".repeat(27),
    "g_" + "1".repeat(26),
    "../me",
    "..",
    "%00",
    "a/b",
    "x".repeat(rng.int(129, 3000)),
    "\u0000",
    "💥",
    "g_aaaaaaaaaaaaaaaaaaaaaaaaaa;DROP",
  ]);
}

/**
 * What a string with lone surrogates becomes when the server stores it as UTF-8 and reads it
 * back (each lone surrogate's 3 WTF-8 bytes decoded as 3 U+FFFD): used to recognise a reply
 * to a send whose id the server mangled, so the mangling is reported rather than a hang.
 */
export function mangleLoneSurrogates(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
        continue;
      }
      out += "\ufffd\ufffd\ufffd";
    } else if (c >= 0xdc00 && c <= 0xdfff) out += "\ufffd\ufffd\ufffd";
    else out += s[i];
  }
  return out;
}
