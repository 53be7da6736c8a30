/**
 * Case generators: every endpoint and both sockets, each case drawn from `Rng.forCase(seed, i)`
 * so a run is reproducible case by case. Each case carries what the contract allows as an answer.
 */
import { PASSWORD, type Session } from "../../test/e2e/client.ts";
import { err, mutate, OK, okOr, statusesFor, type Field, type Mutated, type Outcome } from "./bodies.ts";
import type { Case, HandshakeCase, HttpCase, PostProblem, SendRecord, WsFrameCase } from "./cases.ts";
import { HANDLE_RE, LIMITS, type ErrorCode } from "./contract.ts";
import type { Rng } from "../lib/prng.ts";
import { ghostId, junkId, nestedText, oddText, randomBase32, Raw, toJson, wrongType } from "./values.ts";
import { signToken, type Attacker, type World } from "./world.ts";

/** Tokens an attacker forges: every one of them must be refused with 401 (or close 4401). */
export interface ForgedTokens {
  expired: string;
  wrongSecret: string;
  algNone: string;
  /** Signed with the real secret: the attacker's device under an honest user's id. */
  crossUser: string;
  /** Signed with the real secret: an honest device under the attacker's id. */
  crossDevice: string;
  noDid: string;
  didNumber: string;
  noExp: string;
  ghostDevice: string;
}

export interface GenContext {
  world: World;
  forged: Map<string, ForgedTokens>;
}

const b64u = (s: string) => Buffer.from(s).toString("base64url");

export async function forgeTokens(world: World): Promise<Map<string, ForgedTokens>> {
  const out = new Map<string, ForgedTokens>();
  const now = Math.floor(Date.now() / 1000);
  const honest = world.honest[0]!.s;
  for (const a of world.attackers) {
    const { user_id: sub, device_id: did } = a.s;
    const header = b64u(JSON.stringify({ alg: "none", typ: "JWT" }));
    const payload = b64u(JSON.stringify({ sub, did, exp: now + 3600 }));
    out.set(sub, {
      expired: await signToken(world.secret, { sub, did, exp: now - 60 }),
      wrongSecret: await signToken("not-the-secret-0123456789abcdef0123456789", { sub, did, exp: now + 3600 }),
      algNone: `${header}.${payload}.`,
      crossUser: await signToken(world.secret, { sub: honest.user_id, did, exp: now + 3600 }),
      crossDevice: await signToken(world.secret, { sub, did: honest.device_id, exp: now + 3600 }),
      noDid: await signToken(world.secret, { sub, exp: now + 3600 }),
      didNumber: await signToken(world.secret, { sub, did: 12345, exp: now + 3600 }),
      noExp: await signToken(world.secret, { sub, did }),
      ghostDevice: await signToken(world.secret, { sub, did: `d_${"a".repeat(26)}`, exp: now + 3600 }),
    });
  }
  return out;
}

// ---- helpers -----------------------------------------------------------------

const enc = encodeURIComponent;

function httpCase(
  category: string,
  variant: string,
  actor: Session | null,
  method: string,
  path: string,
  expect: number[],
  m?: Mutated,
  extra: Partial<HttpCase> = {},
): Omit<HttpCase, "index"> {
  const headers: Record<string, string> = {};
  if (actor) headers.authorization = `Bearer ${actor.token}`;
  if (m) {
    const ct = m.contentType === undefined ? "application/json" : m.contentType;
    if (ct !== null) headers["content-type"] = ct;
  }
  return { kind: "http", category, variant, actor: actor?.user_id ?? null, method, path, headers, body: m?.body, expect, ...extra };
}

function realUsers(w: World): string[] {
  return [...w.honest.map((h) => h.s.user_id), ...w.attackers.map((a) => a.s.user_id), ...w.flooders.map((f) => f.user_id)];
}

function uniqueGhosts(rng: Rng, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `u_${randomBase32(rng, 20)}${i.toString(32).padStart(6, "a")}`);
}

function extras(rng: Rng, w: World): () => Record<string, unknown> {
  return () => {
    const h = rng.pick(w.honest);
    const pool: Record<string, () => unknown> = {
      sender_id: () => h.s.user_id,
      sender_device_id: () => h.s.device_id,
      user_id: () => h.s.user_id,
      device_id: () => h.s.device_id,
      conversation_id: () => rng.pick(w.honestConvs),
      seq: () => rng.int(1, 5),
      message_id: () => ghostId(rng, "m"),
      created_at: () => 0,
      role: () => "admin",
      admin: () => true,
      members: () => [h.s.user_id],
      from_user_id: () => h.s.user_id,
      token: () => h.s.token.slice(0, 20),
      type: () => "send",
      [oddText(rng)]: () => oddText(rng),
    };
    const keys = rng.shuffle(Object.keys(pool)).slice(0, rng.int(1, 4));
    return Object.fromEntries(keys.map((k) => [k, pool[k]!()]));
  };
}

/** A conversation to aim at, from the attacker's point of view. */
interface Target {
  label: "own" | "mixed" | "direct" | "honest" | "ghost" | "junk";
  conv: string;
  path: string;
}

function pickTarget(rng: Rng, w: World, a: Attacker, weights: Partial<Record<Target["label"], number>> = {}): Target {
  const label = rng.weighted<Target["label"]>([
    ["own", weights.own ?? 3],
    ["mixed", weights.mixed ?? 2],
    ["direct", weights.direct ?? 1],
    ["honest", weights.honest ?? 3],
    ["ghost", weights.ghost ?? 1],
    ["junk", weights.junk ?? 1],
  ]);
  const conv =
    label === "own"
      ? a.ownGroup
      : label === "mixed"
        ? w.mixed
        : label === "direct"
          ? a.direct
          : label === "honest"
            ? rng.pick(w.honestConvs)
            : label === "ghost"
              ? ghostId(rng, rng.pick(["g", "c"] as const))
              : junkId(rng);
  return { label, conv, path: `/v1/conversations/${enc(conv)}` };
}

const isMemberTarget = (t: Target) => t.label === "own" || t.label === "mixed" || t.label === "direct";

/** What a request that would succeed for a member gets, by target. */
function byTarget(t: Target, memberOk: number[]): number[] {
  if (isMemberTarget(t)) return memberOk;
  if (t.label === "honest") return [403];
  return [404];
}

// ---- message bodies (HTTP and the `send` frame) ----------------------------------

interface SendBody {
  fields: Field[];
  cmid: string;
}

function sendFields(rng: Rng, w: World, a: Attacker): SendBody {
  const cmid = rng.weighted<() => string>([
    [() => `fz-${randomBase32(rng, 16)}`, 6],
    // Honest users' ids: scoped by sender, so they must create a new message of the attacker's.
    [() => (w.honestCmids.length ? rng.pick(w.honestCmids) : `fz-${randomBase32(rng, 16)}`), 2],
    // A repeat of one of its own: answered with the original.
    [() => `fz-repeat-${a.index}-${rng.int(0, 20)}`, 2],
  ])();
  const content = rng.weighted<() => string>([
    [() => `hostile ${randomBase32(rng, 8)}`, 5],
    [() => oddText(rng), 2],
    [() => "", 1],
    [() => "z".repeat(LIMITS.maxContentChars), 0.5], // exactly at the limit: valid
  ])();
  const fields: Field[] = [
    {
      name: "client_message_id",
      required: true,
      type: "string",
      valid: () => cmid,
      bad: () => rng.pick(["", "x".repeat(129)]),
      huge: () => ({ value: "c".repeat(rng.int(300_000, 400_000)), outcome: err(413) }),
      odd: OK,
      lone: okOr(400),
    },
    {
      name: "kind",
      required: true,
      type: "string",
      valid: () => rng.pick(["text", "text", "encrypted"]),
      bad: () => rng.pick(["TEXT", "video", "", "text ", "Text", "image"]),
      odd: err(400),
      lone: err(400),
    },
    {
      name: "content",
      required: true,
      type: "string",
      valid: () => content,
      huge: () =>
        rng.pick([
          { value: "x".repeat(LIMITS.maxContentChars + 1), outcome: err(413) },
          { value: "é".repeat(LIMITS.maxContentChars + rng.int(1, 20_000)), outcome: err(413) },
          { value: "😀".repeat(LIMITS.maxContentChars / 2 + 1), outcome: err(413) },
          { value: "y".repeat(rng.int(262_145, 500_000)), outcome: err(413) },
        ]),
      odd: OK,
      lone: okOr(400),
    },
    {
      name: "media_id",
      required: false,
      type: "string",
      valid: () => `md_${randomBase32(rng)}`,
      bad: () => rng.pick(["", "m".repeat(129)]),
      odd: OK,
      lone: okOr(400),
    },
  ];
  return { fields, cmid };
}

/** The 2xx checks of a send: the caller's message, in this conversation, exactly as sent. */
function sendPost(actor: string, conv: string, value: Record<string, unknown> | undefined): (res: { status: number; json: any }) => PostProblem[] {
  return (res) => {
    const problems: PostProblem[] = [];
    const m = res.json;
    if (!m || typeof m !== "object") return [{ kind: "violation", detail: `send answered ${res.status} without a message` }];
    if (m.sender_id !== actor) problems.push({ kind: "wrong", detail: `send by ${actor} answered a message of sender ${m.sender_id}` });
    if (m.conversation_id !== conv) problems.push({ kind: "wrong", detail: `send to ${conv} answered a message of ${m.conversation_id}` });
    if (!Number.isInteger(m.seq) || m.seq < 1) problems.push({ kind: "violation", detail: `message seq ${m.seq}` });
    if (value && typeof value.client_message_id === "string" && m.client_message_id !== value.client_message_id) {
      problems.push({ kind: "wrong", detail: `client_message_id ${JSON.stringify(value.client_message_id)} came back as ${JSON.stringify(m.client_message_id)}` });
    }
    if (res.status === 201 && value && typeof value.content === "string" && m.content !== value.content) {
      problems.push({
        kind: "wrong",
        detail: `content stored differently from what was sent (${value.content.length} chars sent: ${JSON.stringify(value.content.slice(0, 40))}, ${String(m.content?.length)} stored: ${JSON.stringify(String(m.content).slice(0, 40))})`,
      });
    }
    return problems;
  };
}

/** A mutation that left the content over 100,000 characters (odd text appended to one at the limit) gets 413. */
function overContentLimit(m: Mutated): Mutated {
  const content = m.value?.content;
  if (typeof content === "string" && content.length > LIMITS.maxContentChars && m.outcome.kind !== "err") {
    return { ...m, outcome: m.outcome.kind === "okOr" ? err(413, ...m.outcome.statuses) : err(413) };
  }
  return m;
}

function sendRecord(conv: string, actor: string, m: Mutated): SendRecord | undefined {
  if (!m.value) return undefined;
  return { conv, sender: actor, cmid: m.value.client_message_id, content: m.value.content };
}

// ---- HTTP categories --------------------------------------------------------------

function genRegister(rng: Rng, w: World): Omit<HttpCase, "index"> {
  const handle = `fz_${randomBase32(rng, 20)}`;
  const fields: Field[] = [
    {
      name: "handle",
      required: true,
      type: "string",
      valid: () => handle,
      bad: () => rng.pick(["ab", "AB_cd", "with space", "x".repeat(33), "ünï", "a-b", "", "abc\n", "ab\u0000c", "ab.c"]),
      huge: () => ({ value: "h".repeat(rng.int(100_000, 250_000)), outcome: err(400) }),
      odd: err(400),
      lone: err(400),
    },
    {
      name: "password",
      required: true,
      type: "string",
      valid: () => `pw-${randomBase32(rng, 12)}`,
      bad: () => rng.pick(["short", "", "1234567"]),
      huge: () => rng.pick([{ value: "p".repeat(2000), outcome: err(400) }, { value: "p".repeat(300_000), outcome: err(413) }]),
      odd: okOr(400),
      lone: okOr(400),
    },
    {
      name: "display_name",
      required: false,
      type: "string",
      valid: () => `Fuzz ${randomBase32(rng, 6)}`,
      bad: () => "",
      huge: () => ({ value: "d".repeat(rng.int(129, 5000)), outcome: err(400) }),
      odd: OK,
      lone: okOr(400),
    },
  ];
  if (rng.chance(0.08)) {
    // a taken handle
    const taken = rng.pick([...w.honest.map((h) => h.s.handle), ...w.attackers.map((a) => a.s.handle)]);
    const m: Mutated = { variant: "taken", outcome: OK, body: toJson({ handle: taken, password: `pw-${randomBase32(rng, 12)}` }) };
    return httpCase("http.register", "taken", null, "POST", "/v1/auth/register", [409], m);
  }
  const m = mutate(rng, fields, { extras: extras(rng, w) });
  const expect = statusesFor(m.outcome, [201]);
  const v = m.value;
  return httpCase("http.register", m.variant, null, "POST", "/v1/auth/register", expect, m, {
    register: { handle, display_name: v?.display_name, acceptable: m.outcome.kind === "ok" },
    post: (res) => {
      if (!v) return [];
      const problems: PostProblem[] = [];
      const okHandle = typeof v.handle === "string" && HANDLE_RE.test(v.handle);
      const okPassword = typeof v.password === "string" && v.password.length >= 8;
      const okName = v.display_name === undefined || (typeof v.display_name === "string" && v.display_name.length >= 1);
      if (!okHandle || !okPassword || !okName) {
        problems.push({ kind: "wrong", detail: `registration accepted that the contract refuses: ${JSON.stringify(v).slice(0, 200)}` });
      }
      if (typeof res.json?.token !== "string" || typeof res.json?.user_id !== "string") problems.push({ kind: "violation", detail: "register 201 without token/user_id" });
      return problems;
    },
  });
}

function genLogin(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  const target = rng.weighted<"own" | "honest" | "ghost">([
    ["own", 4],
    ["honest", 4],
    ["ghost", 1],
  ]);
  const handle = target === "own" ? a.s.handle : target === "honest" ? rng.pick(w.honest).s.handle : `fz_ghost_${randomBase32(rng, 10)}`;
  const password = target === "own" ? PASSWORD : rng.pick([PASSWORD.toUpperCase(), `${PASSWORD} `, "password", "", "x".repeat(8), "' OR '1'='1"]);
  const fields: Field[] = [
    {
      name: "handle",
      required: true,
      type: "string",
      valid: () => handle,
      // Over-long login fields are simply wrong (401) up to a generous bound, then invalid (400).
      huge: () =>
        rng.pick([
          { value: "h".repeat(rng.int(65, 4096)), outcome: err(401, 400) },
          { value: "h".repeat(rng.int(4097, 20_000)), outcome: err(400, 401) },
          { value: "h".repeat(300_000), outcome: err(413) },
        ]),
      odd: err(401),
      lone: err(401),
    },
    {
      name: "password",
      required: true,
      type: "string",
      valid: () => password,
      huge: () =>
        rng.pick([
          { value: "p".repeat(rng.int(1025, 4096)), outcome: err(401, 400) },
          { value: "p".repeat(rng.int(4097, 20_000)), outcome: err(400, 401) },
          { value: "p".repeat(300_000), outcome: err(413) },
        ]),
      odd: err(401),
      lone: err(401),
    },
    {
      name: "device_name",
      required: false,
      type: "string",
      valid: () => `fuzz device ${randomBase32(rng, 4)}`,
      bad: () => "",
      huge: () => ({ value: "n".repeat(rng.int(129, 3000)), outcome: err(400) }),
      odd: OK,
      lone: okOr(400),
    },
  ];
  const m = mutate(rng, fields, { extras: extras(rng, w) });
  const ok = target === "own" ? [200] : [401];
  const owner = a.s.user_id;
  return httpCase("http.login", `${target}:${m.variant}`, null, "POST", "/v1/auth/login", statusesFor(m.outcome, ok), m, {
    post: (res) => (res.json?.user_id !== owner ? [{ kind: "wrong", detail: `login as ${handle} gave a token of ${res.json?.user_id}` }] : []),
  });
}

function genCreate(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  const users = realUsers(w);
  if (rng.chance(0.4)) {
    const peerKind = rng.weighted<"honest" | "attacker" | "self" | "ghost" | "junk">([
      ["honest", 3],
      ["attacker", 2],
      ["self", 1],
      ["ghost", 1],
      ["junk", 1],
    ]);
    const peer =
      peerKind === "honest"
        ? rng.pick(w.honest).s.user_id
        : peerKind === "attacker"
          ? (w.attackers.filter((x) => x !== a).map((x) => x.s.user_id)[0] !== undefined ? rng.pick(w.attackers.filter((x) => x !== a)).s.user_id : a.s.user_id)
          : peerKind === "self"
            ? a.s.user_id
            : peerKind === "ghost"
              ? ghostId(rng, "u")
              : rng.pick(["x".repeat(129), "", "null", "u_", "💥", "../admin"]);
    const ok = peer === a.s.user_id ? [400] : peerKind === "honest" || peerKind === "attacker" ? [200, 201] : peerKind === "ghost" ? [404] : peer === "" || peer.length > 128 ? [400] : [404];
    const fields: Field[] = [
      { name: "type", required: true, type: "string", valid: () => "direct", bad: () => rng.pick(["Direct", "DIRECT", "dm", "group ", "", "private"]), odd: err(400), lone: err(400) },
      { name: "peer", required: true, type: "string", valid: () => peer, bad: () => rng.pick(["", "p".repeat(129)]), odd: err(404), lone: err(404, 400) },
    ];
    const m = mutate(rng, fields, { extras: extras(rng, w) });
    return httpCase("http.conversations.create", `direct:${peerKind}:${m.variant}`, a.s, "POST", "/v1/conversations", statusesFor(m.outcome, ok), m, {
      createsConversation: true,
      post: (res) => {
        const members: string[] = (res.json?.members ?? []).map((x: any) => x.user_id);
        if (!members.includes(a.s.user_id)) return [{ kind: "wrong", detail: `direct conversation created without its creator: ${JSON.stringify(res.json).slice(0, 200)}` }];
        return [];
      },
    });
  }
  const memberKind = rng.weighted<"real" | "ghost" | "tooMany" | "empty">([
    ["real", 5],
    ["ghost", 1],
    ["tooMany", 1],
    ["empty", 1],
  ]);
  const members =
    memberKind === "real"
      ? rng.shuffle([...users]).slice(0, rng.int(1, 5))
      : memberKind === "ghost"
        ? [...rng.shuffle([...users]).slice(0, 2), ghostId(rng, "u")]
        : memberKind === "tooMany"
          ? uniqueGhosts(rng, rng.int(LIMITS.maxGroupMembers, 600))
          : [];
  const ok = memberKind === "ghost" ? [404] : memberKind === "tooMany" ? [422] : [201];
  const name = `fuzz group ${randomBase32(rng, 6)}`;
  const fields: Field[] = [
    { name: "type", required: true, type: "string", valid: () => "group", bad: () => rng.pick(["Group", "GROUP", "groups", " group", ""]), odd: err(400), lone: err(400) },
    {
      name: "name",
      required: true,
      type: "string",
      valid: () => name,
      bad: () => "",
      huge: () => ({ value: "n".repeat(rng.int(257, 10_000)), outcome: err(400) }),
      odd: OK,
      lone: okOr(400),
    },
    {
      name: "members",
      required: true,
      type: "array",
      valid: () => members,
      bad: () => rng.pick([[""], ["x".repeat(129)], [1, 2], [null], [[users[0]]]]),
      huge: () => rng.pick([{ value: Array.from({ length: 10_001 }, (_, i) => `u${i}`), outcome: err(400) }, { value: uniqueGhosts(rng, 20_000), outcome: err(413) }]),
    },
  ];
  const m = mutate(rng, fields, { extras: extras(rng, w) });
  const v = m.value;
  return httpCase("http.conversations.create", `group:${memberKind}:${m.variant}`, a.s, "POST", "/v1/conversations", statusesFor(m.outcome, ok), m, {
    createsConversation: true,
    post: (res) => {
      const problems: PostProblem[] = [];
      const got: string[] = (res.json?.members ?? []).map((x: any) => x.user_id);
      if (!got.includes(a.s.user_id)) problems.push({ kind: "wrong", detail: "group created without its creator" });
      if (v && typeof v.name === "string" && res.json?.name !== v.name) {
        problems.push({ kind: "wrong", detail: `group name stored differently: sent ${JSON.stringify(v.name).slice(0, 60)}, stored ${JSON.stringify(res.json?.name).slice(0, 60)}` });
      }
      if (v && Array.isArray(v.members)) for (const u of v.members) if (typeof u === "string" && !got.includes(u)) problems.push({ kind: "wrong", detail: `group created without member ${u}` });
      if (got.some((u) => !users.includes(u) && u !== a.s.user_id)) problems.push({ kind: "wrong", detail: `group created with a member that is no user: ${got.join(",")}` });
      return problems;
    },
  });
}

function genMembersAdd(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  const t = pickTarget(rng, w, a, { own: 4 });
  const users = realUsers(w);
  const kind = rng.weighted<"real" | "ghost" | "self">([
    ["real", 5],
    ["ghost", 1],
    ["self", 1],
  ]);
  const ids = kind === "real" ? rng.shuffle([...users]).slice(0, rng.int(1, 3)) : kind === "ghost" ? [ghostId(rng, "u")] : [a.s.user_id];
  const memberOk = t.label === "own" ? (kind === "ghost" ? [404] : [200]) : [403];
  const fields: Field[] = [
    {
      name: "user_ids",
      required: true,
      type: "array",
      valid: () => ids,
      bad: () => rng.pick([[], [""], ["x".repeat(129)], [7], [null]]),
      huge: () =>
        rng.pick([
          { value: uniqueGhosts(rng, rng.int(LIMITS.maxGroupMembers + 1, 2000)), outcome: t.label === "own" ? err(422) : err(422, 403) },
          { value: Array.from({ length: 10_001 }, (_, i) => `u${i}`), outcome: err(400) },
        ]),
    },
  ];
  const m = mutate(rng, fields, { extras: extras(rng, w) });
  const v = m.value;
  return httpCase("http.members.add", `${t.label}:${kind}:${m.variant}`, a.s, "POST", `${t.path}/members`, statusesFor(m.outcome, byTarget(t, memberOk)), m, {
    post: (res) => {
      if (t.label !== "own") return [{ kind: "wrong", detail: `an attacker added members to a ${t.label} conversation ${t.conv}` }];
      const got: string[] = (res.json?.members ?? []).map((x: any) => x.user_id);
      const want = Array.isArray(v?.user_ids) ? (v!.user_ids as unknown[]) : [];
      return want.filter((u) => typeof u === "string" && !got.includes(u)).map((u) => ({ kind: "wrong" as const, detail: `member ${u} not added though answered 200` }));
    },
  });
}

function genMembersRemove(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  const t = pickTarget(rng, w, a, { own: 3 });
  const otherAttacker = rng.pick(w.attackers.filter((x) => x !== a).length ? w.attackers.filter((x) => x !== a) : w.attackers).s.user_id;
  const honestUser = rng.pick(w.honest).s.user_id;
  let who: string;
  let expect: number[];
  switch (t.label) {
    case "own":
      who = rng.pick([otherAttacker, honestUser, ghostId(rng, "u"), junkId(rng)]);
      expect = who === otherAttacker || who === honestUser ? [204, 404] : [404];
      break;
    case "mixed":
      who = rng.pick([honestUser, otherAttacker, w.honest[0]!.s.user_id]);
      expect = [403];
      break;
    case "direct":
      who = rng.pick([otherAttacker, a.s.user_id]);
      expect = [403];
      break;
    case "honest":
      who = rng.pick([honestUser, a.s.user_id]);
      expect = [403];
      break;
    default:
      who = rng.pick([honestUser, a.s.user_id]);
      expect = [404];
  }
  const path = `${t.path}/members/${who === "" ? "" : enc(who)}`;
  if (who === "") expect = [404];
  return httpCase("http.members.remove", `${t.label}`, a.s, "DELETE", path, expect, undefined, {
    post: () => (t.label !== "own" ? [{ kind: "wrong", detail: `an attacker removed ${who} from a ${t.label} conversation ${t.conv}` }] : []),
  });
}

function genSend(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  const t = pickTarget(rng, w, a, { own: 3, mixed: 3 });
  const { fields } = sendFields(rng, w, a);
  if (rng.chance(0.05)) {
    // kind media without media_id
    const m: Mutated = { variant: "mediaWithoutId", outcome: err(400), body: toJson({ client_message_id: `fz-${randomBase32(rng, 12)}`, kind: "media", content: "x" }) };
    m.value = JSON.parse(m.body as string);
    return httpCase("http.messages.send", `${t.label}:mediaWithoutId`, a.s, "POST", `${t.path}/messages`, statusesFor(m.outcome, byTarget(t, [201, 200, 429])), m, {
      send: sendRecord(t.conv, a.s.user_id, m),
    });
  }
  const m = overContentLimit(mutate(rng, fields, { extras: extras(rng, w) }));
  const ok = byTarget(t, [201, 200, 429]);
  return httpCase("http.messages.send", `${t.label}:${m.variant}`, a.s, "POST", `${t.path}/messages`, statusesFor(m.outcome, ok), m, {
    send: isMemberTarget(t) || t.label === "honest" ? sendRecord(t.conv, a.s.user_id, m) : undefined,
    post: isMemberTarget(t) ? sendPost(a.s.user_id, t.conv, m.value) : () => [{ kind: "wrong", detail: `an attacker's send to a ${t.label} conversation was accepted` }],
  });
}

function genMarkers(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  const t = pickTarget(rng, w, a, { own: 3, mixed: 3 });
  const kind = rng.pick(["read", "delivered"]);
  const choice = rng.weighted<"zero" | "small" | "beyond">([
    ["zero", 2],
    ["small", 2],
    ["beyond", 2],
  ]);
  const value = choice === "zero" ? 0 : choice === "small" ? rng.int(1, 3) : rng.pick([2 ** 40, 2 ** 52, Number.MAX_SAFE_INTEGER, 1_000_000]);
  const memberOk = choice === "zero" ? [204] : choice === "small" ? [204, 400] : [400];
  const fields: Field[] = [
    {
      name: "up_to_seq",
      required: true,
      type: "number",
      valid: () => value,
      bad: () => rng.pick([-1, 1.5, -0.5, 1e-9]),
      huge: () => ({ value: new Raw(rng.pick(["9007199254740993", "1e309", "18446744073709551616"])), outcome: err(400) }),
    },
  ];
  const m = mutate(rng, fields, { extras: extras(rng, w) });
  return httpCase("http.markers", `${kind}:${t.label}:${choice}:${m.variant}`, a.s, "POST", `${t.path}/${kind}`, statusesFor(m.outcome, byTarget(t, memberOk)), m, {
    post: () => (!isMemberTarget(t) ? [{ kind: "wrong", detail: `an attacker moved a ${kind} marker in a ${t.label} conversation` }] : []),
  });
}

const VALID_HISTORY = ["", "?limit=1", "?limit=200", "?after_seq=0&limit=50", "?before_seq=5", "?after_seq=999999999999999", "?limit=007", "?before_seq=0", "?after_seq=3&limit=2", "?unknown=1"];
const INVALID_HISTORY = [
  "?limit=0",
  "?limit=201",
  "?limit=-1",
  "?limit=abc",
  "?limit=1e2",
  "?limit=1.5",
  "?limit=",
  "?after_seq=-1",
  "?after_seq=1234567890123456",
  "?after_seq=1&before_seq=2",
  "?limit=%ZZ",
  "?limit=%00",
  "?after_seq=NaN",
  "?before_seq=Infinity",
  "?limit=9007199254740993",
  `?limit=${"9".repeat(5000)}`,
  "?after_seq=0x10",
  "?limit=%205",
  "?limit=5%20",
  "?before_seq=-0",
  "?after_seq=%E0%A4%A",
  "?limit=%F0%9F%98%80",
];

function genHistory(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  const t = pickTarget(rng, w, a, { own: 3, mixed: 3 });
  const valid = rng.chance(0.45);
  const q = valid ? rng.pick(VALID_HISTORY) : rng.pick(INVALID_HISTORY);
  const memberOk = valid ? [200] : [400];
  const expect = isMemberTarget(t) ? memberOk : valid ? byTarget(t, []) : [400, ...byTarget(t, [])];
  const limit = Number(new URLSearchParams(q).get("limit") ?? 50);
  return httpCase("http.history", `${t.label}:${valid ? "valid" : "invalid"}`, a.s, "GET", `${t.path}/messages${q}`, expect, undefined, {
    post: (res) => {
      if (!isMemberTarget(t)) return [{ kind: "wrong", detail: `an attacker read the history of a ${t.label} conversation` }];
      const msgs = res.json?.messages;
      if (!Array.isArray(msgs)) return [{ kind: "violation", detail: "history 200 without messages" }];
      const problems: PostProblem[] = [];
      if (msgs.length > limit) problems.push({ kind: "violation", detail: `history page of ${msgs.length} > limit ${limit}` });
      for (let i = 1; i < msgs.length; i++) if (msgs[i].seq !== msgs[i - 1].seq + 1) problems.push({ kind: "wrong", detail: `history seqs not consecutive: ${msgs[i - 1].seq} then ${msgs[i].seq}` });
      if (msgs.some((m: any) => m.conversation_id !== t.conv)) problems.push({ kind: "wrong", detail: "history holds a message of another conversation" });
      const next = res.json.next_after_seq;
      if (next !== null && !Number.isInteger(next)) problems.push({ kind: "violation", detail: `next_after_seq ${next}` });
      return problems;
    },
  });
}

function genList(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  const b64 = (v: string) => Buffer.from(v).toString("base64url");
  const variants: [string, number[]][] = [
    ["", [200]],
    ["?limit=1", [200]],
    ["?limit=200", [200]],
    [`?cursor=${b64(JSON.stringify([Date.now(), "g_x"]))}`, [200]],
    [`?cursor=${b64("[1e308,\"x\"]")}`, [200]],
    [`?cursor=${b64('[-1,""]')}`, [200]],
    ["?limit=0", [400]],
    ["?limit=201", [400]],
    ["?limit=x", [400]],
    ["?cursor=%%%", [400]],
    ["?cursor=!!!!", [400]],
    [`?cursor=${b64("[1]")}`, [400]],
    [`?cursor=${"a".repeat(513)}`, [400]],
    [`?cursor=${b64('{"a":1}')}`, [400]],
    [`?cursor=${b64('[1,"x",3]')}`, [400]],
    [`?cursor=${b64('["1","x"]')}`, [400]],
    [`?cursor=${b64(nestedText(100))}`, [400]],
    [`?cursor=${b64("[1,\"x\\ud800\"]")}`, [200, 400]],
    ["?cursor=", [200, 400]],
  ];
  const [q, expect] = rng.pick(variants);
  return httpCase("http.conversations.list", q.split("=")[0] || "plain", a.s, "GET", `/v1/conversations${q}`, expect, undefined, {
    post: (res) => {
      const list = res.json?.conversations;
      if (!Array.isArray(list)) return [{ kind: "violation", detail: "list 200 without conversations" }];
      const bad = list.filter((c: any) => !(c.members ?? []).some((m: any) => m.user_id === a.s.user_id));
      return bad.length ? [{ kind: "wrong", detail: `conversation list shows ${bad.length} conversation(s) the caller is not in` }] : [];
    },
  });
}

function genReads(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  const h = rng.pick(w.honest).s;
  const publicKeys = (res: { json: any }): PostProblem[] => {
    const keys = Object.keys(res.json ?? {}).sort();
    const extra = keys.filter((k) => !["display_name", "handle", "user_id"].includes(k));
    return extra.length ? [{ kind: "wrong", detail: `a user look-up discloses ${extra.join(",")}` }] : [];
  };
  const variant = rng.pick(["conv", "user", "userByHandle", "presence", "me"] as const);
  switch (variant) {
    case "conv": {
      const t = pickTarget(rng, w, a);
      return httpCase("http.reads", `conversation:${t.label}`, a.s, "GET", t.path, byTarget(t, [200]), undefined, {
        post: (res) => (!isMemberTarget(t) || !(res.json?.members ?? []).some((m: any) => m.user_id === a.s.user_id) ? [{ kind: "wrong", detail: `an attacker read a ${t.label} conversation` }] : []),
      });
    }
    case "user": {
      const pick = rng.pick([["honest", h.user_id, [200]], ["ghost", ghostId(rng, "u"), [404]], ["junk", junkId(rng), [404]]] as const);
      const path = `/v1/users/${enc(pick[1])}`;
      return httpCase("http.reads", `user:${pick[0]}`, a.s, "GET", pick[1] === "" ? "/v1/users/" : path, pick[1] === "" ? [400, 404] : [...pick[2]], undefined, { post: publicKeys });
    }
    case "userByHandle": {
      const pick = rng.pick([
        ["honest", `?handle=${h.handle}`, [200]],
        ["ghost", `?handle=fz_nobody_${randomBase32(rng, 8)}`, [404]],
        ["empty", "?handle=", [400]],
        ["none", "", [400]],
        ["long", `?handle=${"h".repeat(65)}`, [400, 404]],
        ["odd", `?handle=${enc(oddText(rng))}`, [404]],
        ["array", `?handle[]=x`, [400]],
        ["badPercent", "?handle=%", [404, 400]],
      ] as const);
      return httpCase("http.reads", `userByHandle:${pick[0]}`, a.s, "GET", `/v1/users${pick[1]}`, [...pick[2]], undefined, { post: publicKeys });
    }
    case "presence": {
      const pick = rng.pick([
        ["honest", h.user_id, [200, 403]],
        ["self", a.s.user_id, [200]],
        ["ghost", ghostId(rng, "u"), [404]],
      ] as const);
      return httpCase("http.reads", `presence:${pick[0]}`, a.s, "GET", `/v1/users/${enc(pick[1])}/presence`, [...pick[2]], undefined, {
        post: (res) => (["online", "offline"].includes(res.json?.status) ? [] : [{ kind: "violation", detail: `presence ${JSON.stringify(res.json)}` }]),
      });
    }
    case "me":
      return httpCase("http.reads", "me", a.s, "GET", "/v1/me", [200], undefined, {
        post: (res) => (res.json?.user_id !== a.s.user_id ? [{ kind: "wrong", detail: `/me of ${a.s.user_id} answered ${res.json?.user_id}` }] : []),
      });
  }
}

function genPush(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  if (rng.chance(0.15)) return httpCase("http.push", "delete", a.s, "DELETE", "/v1/push/subscriptions", [204]);
  if (rng.chance(0.05)) return httpCase("http.push", "vapid-key", null, "GET", "/v1/push/vapid-public-key", [200]);
  const notOnCurve = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]).toString("base64url");
  const fields: Field[] = [
    {
      name: "endpoint",
      required: true,
      type: "string",
      valid: () => `${w.pushEndpoint}${a.s.device_id}`,
      bad: () =>
        rng.pick([
          "ftp://x/y",
          "http://10.0.0.1/push",
          "http://example.com/p",
          "https://user:pw@push.example/p",
          "javascript:alert(1)",
          "not a url",
          "",
          "https://",
          "file:///etc/passwd",
          "data:text/plain,hi",
          "http://169.254.169.254/latest/meta-data",
          "http://0.0.0.0:80/",
          "ws://127.0.0.1/x",
        ]),
      huge: () => ({ value: `https://push.example/${"a".repeat(rng.int(2100, 5000))}`, outcome: err(400) }),
      // Appended to a valid URL, odd characters are percent-encoded by the URL parser: still valid.
      odd: okOr(400),
      lone: okOr(400),
    },
    {
      name: "keys",
      required: true,
      type: "object",
      valid: () => w.pushKeys,
      bad: () =>
        rng.pick([
          { p256dh: notOnCurve, auth: w.pushKeys.auth },
          { p256dh: w.pushKeys.p256dh, auth: Buffer.alloc(15, 1).toString("base64url") },
          { p256dh: "not base64!", auth: w.pushKeys.auth },
          { p256dh: "", auth: "" },
          { p256dh: w.pushKeys.p256dh },
          {},
          { p256dh: w.pushKeys.p256dh.slice(0, 40), auth: w.pushKeys.auth },
          { p256dh: "A".repeat(300), auth: w.pushKeys.auth },
        ]),
    },
  ];
  const m = mutate(rng, fields, { extras: extras(rng, w) });
  return httpCase("http.push", m.variant, a.s, "POST", "/v1/push/subscriptions", statusesFor(m.outcome, [201]), m);
}

function genDevices(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  const h = rng.pick(w.honest);
  const pick = rng.pick([
    ["honestDevice", h.s.device_id],
    ["honestPhone", h.phone.device_id],
    ["flooderDevice", rng.pick(w.flooders).device_id],
    ["revoked", w.revokedDeviceId],
    ["ghost", ghostId(rng, "d")],
    ["junk", junkId(rng)],
  ] as const);
  return httpCase("http.devices", pick[0], a.s, "DELETE", `/v1/devices/${enc(pick[1])}`, [404], undefined, {
    post: () => [{ kind: "wrong", detail: `an attacker revoked device ${pick[1]}` }],
  });
}

function genTokens(rng: Rng, w: World, a: Attacker, forged: ForgedTokens): Omit<HttpCase, "index"> {
  const endpoint = rng.pick([
    { name: "me", method: "GET", path: "/v1/me", ok: [200], body: undefined as string | undefined },
    { name: "list", method: "GET", path: "/v1/conversations", ok: [200], body: undefined },
    { name: "history", method: "GET", path: `/v1/conversations/${a.ownGroup}/messages?limit=1`, ok: [200], body: undefined },
    { name: "send", method: "POST", path: `/v1/conversations/${a.ownGroup}/messages`, ok: [201, 200, 429], body: toJson({ client_message_id: `fz-tok-${randomBase32(rng, 10)}`, kind: "text", content: "token case" }) },
    { name: "read", method: "POST", path: `/v1/conversations/${a.ownGroup}/read`, ok: [204], body: toJson({ up_to_seq: 0 }) },
    { name: "user", method: "GET", path: `/v1/users/${rng.pick(w.honest).s.user_id}`, ok: [200], body: undefined },
    { name: "pushDelete", method: "DELETE", path: "/v1/push/subscriptions", ok: [204], body: undefined },
    { name: "members", method: "POST", path: `/v1/conversations/${a.ownGroup}/members`, ok: [200], body: toJson({ user_ids: [a.s.user_id] }) },
  ]);
  const t = a.s.token;
  const variants: [string, Record<string, string>, boolean][] = [
    ["none", {}, false],
    ["emptyBearer", { authorization: "Bearer " }, false],
    ["bearerOnly", { authorization: "Bearer" }, false],
    ["basic", { authorization: "Basic dXNlcjpwYXNz" }, false],
    ["garbage", { authorization: `Bearer ${randomBase32(rng, 40)}` }, false],
    ["algNone", { authorization: `Bearer ${forged.algNone}` }, false],
    ["wrongSecret", { authorization: `Bearer ${forged.wrongSecret}` }, false],
    ["expired", { authorization: `Bearer ${forged.expired}` }, false],
    ["crossUser", { authorization: `Bearer ${forged.crossUser}` }, false],
    ["crossDevice", { authorization: `Bearer ${forged.crossDevice}` }, false],
    ["noDid", { authorization: `Bearer ${forged.noDid}` }, false],
    ["didNumber", { authorization: `Bearer ${forged.didNumber}` }, false],
    ["noExp", { authorization: `Bearer ${forged.noExp}` }, false],
    ["ghostDevice", { authorization: `Bearer ${forged.ghostDevice}` }, false],
    ["revoked", { authorization: `Bearer ${w.revokedToken}` }, false],
    ["trailingJunk", { authorization: `Bearer ${t}x` }, false],
    ["truncated", { authorization: `Bearer ${t.slice(0, -3)}` }, false],
    // A character in the middle of the signature (the last one of an HMAC-SHA256 signature carries 2 padding bits).
    ["flippedSignature", { authorization: `Bearer ${flipSignature(t)}` }, false],
    ["twoTokens", { authorization: `Bearer ${t} ${t}` }, false],
    ["huge", { authorization: `Bearer ${"x".repeat(rng.int(8_000, 60_000))}` }, false],
    ["headerValueOdd", { authorization: `Bearer \u00ff\u00fe` }, false],
    ["honestTokenPayloadAttackerSig", { authorization: `Bearer ${swapPayload(t, rng.pick(w.honest).s.token)}` }, false],
    ["queryTokenOnHttp", {}, false],
    ["lowercaseScheme", { authorization: `bearer ${t}` }, true],
    ["extraSpaces", { authorization: `Bearer    ${t}` }, true],
  ];
  const [name, headers, valid] = rng.pick(variants);
  const path = name === "queryTokenOnHttp" ? `${endpoint.path}${endpoint.path.includes("?") ? "&" : "?"}token=${t}` : endpoint.path;
  const c = httpCase("http.tokens", `${name}:${endpoint.name}`, null, endpoint.method, path, valid ? endpoint.ok : [401]);
  c.headers = { ...headers, ...(endpoint.body !== undefined ? { "content-type": "application/json" } : {}) };
  c.body = endpoint.body;
  c.actor = valid ? a.s.user_id : null;
  if (!valid) c.post = () => [{ kind: "wrong", detail: `a forged/invalid token (${name}) was accepted on ${endpoint.name}` }];
  return c;
}

function flipSignature(token: string): string {
  const [h, p, sig] = token.split(".");
  const i = Math.floor(sig!.length / 2);
  const c = sig![i] === "A" ? "B" : "A";
  return `${h}.${p}.${sig!.slice(0, i)}${c}${sig!.slice(i + 1)}`;
}

/** A token whose payload is another user's and whose signature is the attacker's own. */
function swapPayload(mine: string, theirs: string): string {
  const [h, , s] = mine.split(".");
  const [, p] = theirs.split(".");
  return `${h}.${p}.${s}`;
}

function genRoutes(rng: Rng, w: World, a: Attacker): Omit<HttpCase, "index"> {
  const r = rng.pick([
    ["GET", "/v1/nope"],
    ["PUT", "/v1/me"],
    ["PATCH", `/v1/conversations/${a.ownGroup}`],
    ["DELETE", `/v1/conversations/${a.ownGroup}`],
    ["POST", "/v1/health"],
    ["GET", `/v1/conversations/${a.ownGroup}/messages/1`],
    ["GET", "/"],
    ["GET", "/v2/health"],
    ["GET", `/v1/conversations/${a.ownGroup}/media/md_x`],
    ["GET", "/v1/keys/count"],
    ["GET", "/v1/calls/ice-servers"],
    ["POST", `/v1/conversations/${a.ownGroup}/ws`],
    ["PUT", `/v1/conversations/${a.ownGroup}/messages`],
    ["GET", "/v1/auth/register"],
    ["GET", `/v1//conversations`],
    ["GET", `/v1/conversations/${a.ownGroup}/members`],
    ["POST", `/v1/users/${rng.pick(w.honest).s.user_id}`],
    ["GET", `/v1/${"a/".repeat(rng.int(10, 500))}`],
    ["GET", `/v1/%2e%2e/%2e%2e/etc/passwd`],
    ["OPTIONS", "/v1/me"],
  ] as const);
  return httpCase("http.routes", `${r[0]} ${r[1].slice(0, 40)}`, a.s, r[0], r[1], [404]);
}

// ---- WebSocket categories ---------------------------------------------------------

const refOf = (text: string): string | null => {
  try {
    const raw = JSON.parse(text);
    return raw && typeof raw === "object" && typeof raw.client_message_id === "string" ? raw.client_message_id : null;
  } catch {
    return null;
  }
};

/** The frame limit is the body limit, counted in UTF-8 bytes. */
const MAX_FRAME = LIMITS.maxBodyBytes;
const utf8Bytes = (text: string) => Buffer.byteLength(text, "utf8");

function wsCase(a: Attacker, socket: WsFrameCase["socket"], variant: string, frames: (string | Uint8Array)[], rest: Partial<WsFrameCase>): Omit<WsFrameCase, "index"> {
  return { kind: "ws", category: socket === "device" ? "ws.device.frame" : "ws.conversation.frame", variant, actor: a, socket, frames, expect: "error", pongs: 0, ...rest };
}

function genConvFrame(rng: Rng, w: World, a: Attacker): Omit<WsFrameCase, "index"> {
  const socket = rng.pick(["own", "mixed"] as const);
  const kind = rng.weighted<string>([
    ["badJson", 3],
    ["binary", 2],
    ["nonObject", 1],
    ["unknownType", 2],
    ["huge", 1],
    ["deep", 1],
    ["send", 7],
    ["marker", 2],
    ["typing", 1],
    ["ping", 1],
    ["call", 3],
  ]);
  const v = (s: string) => `${socket}:${s}`;
  switch (kind) {
    case "badJson":
      return wsCase(a, socket, v("badJson"), [rng.pick(['{"type":"send"', "{'type':'ping'}", "", "garbage", '{"type":"ping",}', "{}{}", "\u0000", '{"type":"send","content":"\u0001"}', "[", "nul"])], {
        codes: ["invalid_request"],
        ref: null,
      });
    case "binary": {
      const bytes = rng.chance(0.5) ? new TextEncoder().encode('{"type":"ping"}') : Uint8Array.from({ length: rng.int(0, 4096) }, () => rng.int(0, 255));
      return wsCase(a, socket, v("binary"), [bytes], { codes: ["invalid_request"], ref: null });
    }
    case "nonObject":
      return wsCase(a, socket, v("nonObject"), [rng.pick(["null", "[]", "123", '"ping"', "true", '[{"type":"ping"}]', "-0", "1e309"])], { codes: ["invalid_request"], ref: null });
    case "unknownType": {
      const type = rng.pick(["sendx", "SEND", "", 123, null, "__proto__", "constructor", "toString", "message", "sent", "error", "presence", "receipt", "hasOwnProperty", undefined, ["send"], { send: 1 }]);
      const frame: Record<string, unknown> = { type, client_message_id: rng.chance(0.5) ? `fz-u-${randomBase32(rng, 8)}` : rng.pick([7, null, ["x"]]), content: "x", kind: "text" };
      const text = toJson(frame);
      return wsCase(a, socket, v(`unknownType:${String(JSON.stringify(type))}`), [text], { codes: ["invalid_request"], ref: refOf(text) });
    }
    case "huge": {
      const size = rng.chance(0.15) ? rng.int(1_000_000, 3_000_000) : rng.int(MAX_FRAME + 1, 600_000);
      const text = toJson({ type: "send", client_message_id: `fz-h-${randomBase32(rng, 8)}`, kind: "text", content: "h".repeat(size) });
      return wsCase(a, socket, v(`huge:${size}`), [text], { codes: ["too_large"], ref: null });
    }
    case "deep": {
      const depth = rng.pick([1000, 10_000, 50_000, 100_000]);
      return wsCase(a, socket, v(`deep:${depth}`), [nestedText(depth, rng.pick(["array", "object"] as const)).slice(0, MAX_FRAME)], { codes: ["invalid_request"], ref: null });
    }
    case "send":
      return genSendFrame(rng, w, a, socket);
    case "marker": {
      const type = rng.pick(["read", "delivered"]);
      const choice = rng.weighted<string>([
        ["zero", 2],
        ["small", 1],
        ["beyond", 2],
        ["wrong", 2],
      ]);
      if (choice === "wrong") {
        const bad = rng.pick<unknown>([-1, 1.5, "5", null, [], {}, new Raw("1e309"), new Raw("9007199254740993"), new Raw("-0.5"), true]);
        const text = toJson({ type, up_to_seq: bad });
        return wsCase(a, socket, v(`${type}:wrong`), [text], { codes: ["invalid_request"], ref: null });
      }
      const value = choice === "zero" ? 0 : choice === "small" ? rng.int(1, 3) : rng.pick([2 ** 40, Number.MAX_SAFE_INTEGER, 1_000_000]);
      const text = toJson({ type, up_to_seq: value, ...(rng.chance(0.2) ? { client_message_id: `fz-m-${randomBase32(rng, 6)}` } : {}) });
      return wsCase(a, socket, v(`${type}:${choice}`), [text], {
        expect: choice === "zero" ? "none" : choice === "small" ? "maybe" : "error",
        codes: ["invalid_request"],
        ref: undefined,
      });
    }
    case "typing": {
      const valid = rng.chance(0.6);
      const state = valid ? rng.pick(["start", "stop"]) : rng.pick<unknown>(["START", "", 1, null, "typing", ["start"]]);
      const text = toJson({ type: "typing", state, ...(rng.chance(0.3) ? { user_id: rng.pick(w.honest).s.user_id } : {}) });
      return wsCase(a, socket, v(`typing:${valid ? "valid" : "invalid"}`), [text], valid ? { expect: "none" } : { codes: ["invalid_request"], ref: null });
    }
    case "ping": {
      const text = rng.pick(['{"type":"ping","probe":"x"}', ' {"type":"ping"}', '{"type":"ping","type":"ping"}', '{"type":"ping","client_message_id":"p"}', '{ "type" : "ping" }']);
      return wsCase(a, socket, v("ping"), [text], { expect: "none", pongs: 1 });
    }
    case "call": {
      const valid = rng.chance(0.6);
      const honestDevice = rng.pick(w.honest).s.device_id;
      if (!valid) {
        const frame = rng.pick<Record<string, unknown>>([
          { type: "call", call_id: "c1", action: "dial" },
          { type: "call", call_id: "", action: "ring" },
          { type: "call", call_id: "x".repeat(129), action: "offer" },
          { type: "call", action: "ring" },
          { type: "call", call_id: "c1", action: "ice", to_device_id: "" },
          { type: "call", call_id: 5, action: "ice" },
          { type: "call", call_id: "c1", action: ["ring"] },
        ]);
        return wsCase(a, socket, v("call:invalid"), [toJson(frame)], { codes: ["invalid_request"], ref: null });
      }
      const payloadKind = rng.pick(["deep", "hugeString", "odd", "null", "absent", "number", "spoof", "object"]);
      const frame: Record<string, unknown> = { type: "call", call_id: `call-${randomBase32(rng, 8)}`, action: rng.pick(["ring", "offer", "answer", "ice", "hangup"]) };
      if (rng.chance(0.4)) frame.to_device_id = rng.pick([honestDevice, ghostId(rng, "d"), a.s.device_id]);
      if (rng.chance(0.3)) Object.assign(frame, { from_user_id: rng.pick(w.honest).s.user_id, from_device_id: honestDevice });
      let text: string;
      switch (payloadKind) {
        case "deep":
          text = `${toJson(frame).slice(0, -1)},"payload":${nestedText(rng.pick([1000, 10_000, 50_000]), rng.pick(["array", "object"] as const))}}`;
          break;
        case "hugeString":
          text = toJson({ ...frame, payload: "s".repeat(rng.int(10_000, 200_000)) });
          break;
        case "odd":
          text = toJson({ ...frame, payload: { sdp: oddText(rng), lone: "\ud800" } });
          break;
        case "null":
          text = toJson({ ...frame, payload: null });
          break;
        case "absent":
          text = toJson(frame);
          break;
        case "number":
          text = toJson({ ...frame, payload: new Raw(rng.pick(["1e309", "-0", "9007199254740993"])) });
          break;
        case "spoof":
          text = toJson({ ...frame, payload: { from_user_id: rng.pick(w.honest).s.user_id, type: "message" } });
          break;
        default:
          text = toJson({ ...frame, payload: { sdp: "v=0\r\n", candidates: Array.from({ length: rng.int(0, 50) }, (_, i) => ({ i, c: randomBase32(rng, 20) })) } });
      }
      if (utf8Bytes(text) > MAX_FRAME) return wsCase(a, socket, v(`call:${payloadKind}:oversize`), [text], { codes: ["too_large"], ref: null });
      return wsCase(a, socket, v(`call:${payloadKind}`), [text], { expect: "none" });
    }
  }
  throw new Error(`unknown frame kind ${kind}`);
}

function genSendFrame(rng: Rng, w: World, a: Attacker, socket: "own" | "mixed"): Omit<WsFrameCase, "index"> {
  const conv = socket === "own" ? a.ownGroup : w.mixed;
  if (rng.chance(0.05)) {
    const cmid = `fz-media-${randomBase32(rng, 10)}`;
    const text = toJson({ type: "send", client_message_id: cmid, kind: "media", content: "x" });
    return wsCase(a, socket, `${socket}:send:mediaWithoutId`, [text], {
      send: { conv, sender: a.s.user_id, cmid, content: "x", errorCodes: ["invalid_request"], mustFail: true },
      expect: "none",
    });
  }
  const { fields } = sendFields(rng, w, a);
  const m = overContentLimit(mutate(rng, fields, { frame: true, fixed: { type: "send" }, extras: extras(rng, w) }));
  const text = m.body as string;
  const variant = `${socket}:send:${m.variant}`;
  if (utf8Bytes(text) > MAX_FRAME) return wsCase(a, socket, variant, [text], { codes: ["too_large"], ref: null });
  const parsedOk = (() => {
    try {
      const raw = JSON.parse(text);
      return (
        raw &&
        typeof raw === "object" &&
        !Array.isArray(raw) &&
        raw.type === "send" &&
        typeof raw.client_message_id === "string" &&
        raw.client_message_id.length >= 1 &&
        raw.client_message_id.length <= 128 &&
        ["text", "media", "encrypted"].includes(raw.kind) &&
        typeof raw.content === "string" &&
        (raw.media_id === undefined || (typeof raw.media_id === "string" && raw.media_id.length >= 1 && raw.media_id.length <= 128))
      );
    } catch {
      return false;
    }
  })();
  const outcome: Outcome = m.outcome;
  if (parsedOk && (outcome.kind !== "err" || outcome.statuses.includes(413))) {
    const raw = JSON.parse(text);
    const mustFail = outcome.kind === "err";
    const codes: ErrorCode[] = mustFail ? ["too_large"] : ["rate_limited"];
    if (outcome.kind !== "ok" && outcome.statuses.includes(400)) codes.push("invalid_request");
    if (raw.kind === "media" && !raw.media_id) codes.push("invalid_request");
    return wsCase(a, socket, variant, [text], { expect: "none", send: { conv, sender: a.s.user_id, cmid: raw.client_message_id, content: raw.content, errorCodes: codes, mustFail } });
  }
  return wsCase(a, socket, variant, [text], { codes: outcome.kind === "err" && outcome.statuses.includes(413) ? ["too_large", "invalid_request"] : ["invalid_request"], ref: refOf(text) });
}

function genDeviceFrame(rng: Rng, w: World, a: Attacker): Omit<WsFrameCase, "index"> {
  const kind = rng.weighted<string>([
    ["badJson", 2],
    ["binary", 1],
    ["frame", 3],
    ["huge", 0.5],
    ["ping", 1],
    ["deep", 0.5],
  ]);
  switch (kind) {
    case "badJson":
      return wsCase(a, "device", "badJson", [rng.pick(["{", "garbage", "", "{'type':'ping'}", "\u0000"])], { codes: ["invalid_request"], ref: null });
    case "binary":
      return wsCase(a, "device", "binary", [Uint8Array.from({ length: rng.int(0, 2048) }, () => rng.int(0, 255))], { codes: ["invalid_request"], ref: null });
    case "huge":
      return wsCase(a, "device", "huge", [toJson({ type: "ping", pad: "x".repeat(rng.int(MAX_FRAME + 1, 1_000_000)) })], { codes: ["invalid_request", "too_large"], ref: null });
    case "deep":
      return wsCase(a, "device", "deep", [nestedText(rng.pick([10_000, 100_000]))], { codes: ["invalid_request"], ref: null });
    case "ping":
      return wsCase(a, "device", "ping", [rng.pick(['{"type":"ping","x":1}', ' {"type":"ping"}', '{"type":"ping","since":"0"}'])], { expect: "none", pongs: 1 });
    default: {
      const frame = rng.pick<Record<string, unknown>>([
        { type: "send", client_message_id: `fz-d-${randomBase32(rng, 6)}`, kind: "text", content: "via device socket", conversation_id: a.ownGroup },
        { type: "read", up_to_seq: 1, conversation_id: rng.pick(w.honestConvs) },
        { type: "subscribe", conversation_id: rng.pick(w.honestConvs) },
        { type: "typing", state: "start" },
        { type: "ack", cursor: "1" },
        { type: "replay", since: "0", user_id: rng.pick(w.honest).s.user_id },
        { type: wrongType(rng, "string") },
        {},
      ]);
      return wsCase(a, "device", `frame:${String(frame.type)}`, [toJson(frame)], { codes: ["invalid_request"], ref: null });
    }
  }
}

function genTypingSpam(rng: Rng, w: World, a: Attacker): Omit<WsFrameCase, "index"> {
  const socket = rng.pick(["own", "mixed"] as const);
  const n = rng.int(20, 200);
  const frames = Array.from({ length: n }, () => toJson({ type: "typing", state: rng.pick(["start", "start", "stop"]) }));
  return { ...wsCase(a, socket, `${socket}:typing×${n}`, frames, { expect: "none" }), category: "ws.typing_spam" };
}

function genHandshake(rng: Rng, w: World, a: Attacker, forged: ForgedTokens): Omit<HandshakeCase, "index"> {
  const device = rng.chance(0.4);
  const token = a.s.token;
  const tokenVariant = rng.weighted<[string, string | undefined, boolean]>([
    [["valid", token, true], 6],
    [["none", undefined, false], 1],
    [["garbage", randomBase32(rng, 30), false], 1],
    [["expired", forged.expired, false], 1],
    [["wrongSecret", forged.wrongSecret, false], 1],
    [["crossUser", forged.crossUser, false], 1],
    [["algNone", forged.algNone, false], 1],
    [["revoked", w.revokedToken, false], 1],
  ]);
  const [tname, tok, tvalid] = tokenVariant;
  const useHeader = tvalid && rng.chance(0.15);
  const headers: Record<string, string> = {};
  const query: Record<string, string> = {};
  if (tok !== undefined) {
    if (useHeader) headers.authorization = `Bearer ${tok}`;
    else query.token = tok;
  }
  if (rng.chance(0.1)) headers.origin = rng.pick(["https://evil.example", "null", "http://127.0.0.1"]);
  if (device) {
    const since = rng.weighted<[string, string | undefined, boolean]>([
      [["none", undefined, true], 3],
      [["zero", "0", true], 1],
      [["big", "999999999999999", true], 1],
      [["negative", "-1", false], 1],
      [["alpha", "abc", false], 1],
      [["float", "1.5", false], 1],
      [["sixteenDigits", "1234567890123456", false], 1],
      [["empty", "", false], 1],
      [["exp", "1e3", false], 1],
    ]);
    if (since[1] !== undefined) query.since = since[1];
    const expect = !tvalid ? [401] : since[2] ? [101, 422] : [400];
    return { kind: "handshake", category: "ws.handshake", variant: `device:${tname}:since=${since[0]}${useHeader ? ":header" : ""}`, actor: a.s.user_id, path: "/v1/sync", query, headers, expect };
  }
  const t = pickTarget(rng, w, a, { own: 3, mixed: 2, honest: 3 });
  const expect = !tvalid ? (t.label === "junk" ? [401, 404] : [401]) : isMemberTarget(t) ? [101, 422] : t.label === "honest" ? [403] : [404];
  return { kind: "handshake", category: "ws.handshake", variant: `conversation:${t.label}:${tname}${useHeader ? ":header" : ""}`, actor: a.s.user_id, path: `${t.path}/ws`, query, headers, expect };
}

// ---- the mix ------------------------------------------------------------------------

export const CATEGORY_WEIGHTS: [string, number][] = [
  ["http.register", 4],
  ["http.login", 2.5],
  ["http.conversations.create", 5],
  ["http.members.add", 3.5],
  ["http.members.remove", 2.5],
  ["http.messages.send", 11],
  ["http.markers", 5],
  ["http.history", 5],
  ["http.conversations.list", 2],
  ["http.reads", 4],
  ["http.push", 3],
  ["http.devices", 1.5],
  ["http.tokens", 6],
  ["http.routes", 2],
  ["ws.conversation.frame", 22],
  ["ws.device.frame", 5],
  ["ws.handshake", 5],
  ["ws.typing_spam", 1.5],
  ["ws.expiring_token", 0.25],
  ["ws.oversized_frame", 0.03],
];

type NewCase = Case extends infer C ? (C extends Case ? Omit<C, "index"> : never) : never;

export function generateCase(ctx: GenContext, rng: Rng, index: number): Case {
  const w = ctx.world;
  const a = rng.pick(w.attackers);
  const forged = ctx.forged.get(a.s.user_id)!;
  const category = rng.weighted(CATEGORY_WEIGHTS);
  let c: NewCase;
  switch (category) {
    case "http.register":
      c = genRegister(rng, w);
      break;
    case "http.login":
      c = genLogin(rng, w, a);
      break;
    case "http.conversations.create":
      c = genCreate(rng, w, a);
      break;
    case "http.members.add":
      c = genMembersAdd(rng, w, a);
      break;
    case "http.members.remove":
      c = genMembersRemove(rng, w, a);
      break;
    case "http.messages.send":
      c = genSend(rng, w, a);
      break;
    case "http.markers":
      c = genMarkers(rng, w, a);
      break;
    case "http.history":
      c = genHistory(rng, w, a);
      break;
    case "http.conversations.list":
      c = genList(rng, w, a);
      break;
    case "http.reads":
      c = genReads(rng, w, a);
      break;
    case "http.push":
      c = genPush(rng, w, a);
      break;
    case "http.devices":
      c = genDevices(rng, w, a);
      break;
    case "http.tokens":
      c = genTokens(rng, w, a, forged);
      break;
    case "http.routes":
      c = genRoutes(rng, w, a);
      break;
    case "ws.conversation.frame":
      c = genConvFrame(rng, w, a);
      break;
    case "ws.device.frame":
      c = genDeviceFrame(rng, w, a);
      break;
    case "ws.handshake":
      c = genHandshake(rng, w, a, forged);
      break;
    case "ws.typing_spam":
      c = genTypingSpam(rng, w, a);
      break;
    case "ws.oversized_frame": {
      // Over the runtime's WebSocket message limit (32 MiB in workerd): the Worker never sees it.
      const target = rng.pick(["device", "conv"] as const);
      const bytes = rng.int(33, 40) << 20;
      c = { kind: "oversized", category, variant: `${target}:${bytes >> 20}MiB`, actor: a, target, bytes };
      break;
    }
    case "ws.expiring_token":
      {
        const target = rng.pick(["device", "conv"] as const);
        c = { kind: "expiring", category, variant: target, actor: a, target, lifetimeSeconds: 2 };
      }
      break;
    default:
      throw new Error(`unknown category ${category}`);
  }
  return { ...c, index } as Case;
}
