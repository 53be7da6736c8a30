/**
 * The end of a run: did every honest client get everything, once and in order, and is what
 * the server stored exactly what valid requests created?
 */
import { cmid as newCmid, sleep, type Api, type Session, type Socket } from "../../test/e2e/client.ts";
import type { HonestTraffic } from "./honest.ts";
import { Ledger } from "./ledger.ts";
import type { World } from "./world.ts";

interface VerifyOptions {
  /** How long honest device sockets get to catch up with the histories. */
  settleMs: number;
  log: (s: string) => void;
}

async function listConversations(api: Api, s: Session): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const res: { status: number; json: any; text: string } = await api.get(`/conversations?limit=200${cursor ? `&cursor=${cursor}` : ""}`, s.token);
    if (res.status !== 200) throw new Error(`list conversations: ${res.status} ${res.text.slice(0, 200)}`);
    out.push(...res.json.conversations);
    cursor = res.json.next_cursor;
    if (!cursor) break;
  }
  return out;
}

/** The seqs of `conv`'s messages as a device socket received them, in arrival order. */
function received(sync: Socket, conv: string): any[] {
  return sync.frames.filter((f) => f?.type === "message" && f.message?.conversation_id === conv).map((f) => f.message);
}

export async function verify(world: World, api: Api, ledger: Ledger, honest: HonestTraffic, opts: VerifyOptions): Promise<void> {
  const { log } = opts;
  await sleep(1_500); // the conversation list may trail by up to 1 s

  // ---- 1. honest device sockets: everything, once, in order --------------------------------
  const histories = new Map<string, any[]>();
  const history = async (s: Session, conv: string): Promise<any[] | null> => {
    try {
      const msgs = await api.allMessages(s, conv);
      histories.set(conv, msgs);
      return msgs;
    } catch {
      return null;
    }
  };

  type Check = { h: (typeof world.honest)[number]; conv: string; last: number; fromStart: boolean };
  const checks: Check[] = [];
  for (const h of world.honest) {
    let convs: any[];
    try {
      convs = await listConversations(api, h.s);
    } catch (err) {
      ledger.add("disturbed", "honest", `${h.s.handle}: ${(err as Error).message}`, undefined, h.s.user_id);
      continue;
    }
    for (const c of convs) {
      const msgs = await history(h.s, c.conversation_id);
      if (!msgs) continue; // removed meanwhile
      checks.push({ h, conv: c.conversation_id, last: msgs.at(-1)?.seq ?? 0, fromStart: h.convs.includes(c.conversation_id) });
    }
  }
  // A conversation an attacker added the user to after its messages so far: nothing is owed
  // yet, so the user sends one message of its own, which its device socket must then show.
  let probes = 0;
  for (const c of checks) {
    if (c.fromStart || c.last === 0 || received(c.h.sync, c.conv).length > 0) continue;
    const id = newCmid("probe");
    const res = await api.send(c.h.s, c.conv, id, "liveness probe");
    if (res.status === 201) {
      probes += 1;
      c.last = res.json.seq;
      ledger.accept(c.conv, c.h.s.user_id, id, res.json, "liveness probe", "honest");
    } else if (res.status !== 403) {
      ledger.add("disturbed", "honest", `${c.h.s.handle}: a message of its own in ${c.conv} answered ${res.status}: ${res.text.slice(0, 160)}`, undefined, c.h.s.user_id);
    }
  }
  const deadline = Date.now() + opts.settleMs;
  const complete = (c: Check) => (received(c.h.sync, c.conv).at(-1)?.seq ?? 0) >= c.last;
  while (Date.now() < deadline && !checks.every(complete)) await sleep(250);
  log(`verify: ${checks.length} (honest user, conversation) streams (${probes} probed with a message of its own); ${checks.filter(complete).length} complete`);

  for (const c of checks) {
    const got = received(c.h.sync, c.conv);
    const seqs = got.map((m) => m.seq);
    const who = c.h.s.handle;
    const user = c.h.s.user_id;
    const problems: string[] = [];
    const seen = new Set<number>();
    const dups = seqs.filter((s) => (seen.has(s) ? true : (seen.add(s), false)));
    if (dups.length) problems.push(`${dups.length} duplicated message(s) (seq ${dups.slice(0, 5).join(",")})`);
    for (let i = 1; i < seqs.length; i++) {
      if (seqs[i]! <= seqs[i - 1]!) {
        problems.push(`out of order: seq ${seqs[i]} after ${seqs[i - 1]}`);
        break;
      }
      // In a conversation the user was in all along, nothing may be skipped; in one an attacker
      // added them to (and perhaps removed them from and added again), only what came while
      // they were out.
      if (c.fromStart && seqs[i]! !== seqs[i - 1]! + 1) {
        problems.push(`gap: seq ${seqs[i - 1]} then ${seqs[i]}`);
        break;
      }
    }
    if (c.fromStart && c.last > 0 && seqs[0] !== 1) problems.push(`first message received is seq ${seqs[0]}, not 1`);
    const top = seqs.at(-1) ?? 0;
    if (top < c.last) problems.push(`missing messages: received up to seq ${top} of ${c.last} after waiting ${opts.settleMs} ms`);
    const byseq = new Map((histories.get(c.conv) ?? []).map((m) => [m.seq, m]));
    const differ = got.filter((m) => byseq.has(m.seq) && (byseq.get(m.seq).message_id !== m.message_id || byseq.get(m.seq).content !== m.content));
    if (differ.length) problems.push(`${differ.length} message(s) on the device socket differ from the history`);
    for (const p of problems) ledger.add("disturbed", "honest", `${who} in ${c.conv === world.mixed ? "the mixed group" : c.conv}: ${p}`, undefined, user);
  }

  // ---- 2. honest sockets stayed open; no error frames for valid frames; nothing spoofed ------
  const attackerIds = new Set([...world.attackers.map((a) => a.s.user_id), ...world.flooders.map((f) => f.user_id)]);
  const honestIds = new Set(world.honest.map((h) => h.s.user_id));
  for (const h of world.honest) {
    if (h.sync.closeInfo) ledger.add("disturbed", "honest", `${h.s.handle}: device socket closed (${h.sync.closeInfo.code} ${h.sync.closeInfo.reason})`, undefined, h.s.user_id);
    for (const [conv, ws] of h.convWs) {
      if (ws.closeInfo) ledger.add("disturbed", "honest", `${h.s.handle}: conversation socket on ${conv} closed (${ws.closeInfo.code} ${ws.closeInfo.reason})`, undefined, h.s.user_id);
      const errors = ws.frames.filter((f) => f?.type === "error");
      if (errors.length) ledger.add("disturbed", "honest", `${h.s.handle}: ${errors.length} error frame(s) on its conversation socket: ${JSON.stringify(errors[0]).slice(0, 200)}`, undefined, h.s.user_id);
      for (const f of ws.frames) {
        if (f?.type === "call" && honestIds.has(f.from_user_id)) {
          ledger.add("wrong", "ws.conversation.frame", `a call frame relayed as from honest user ${f.from_user_id}`);
          break;
        }
        if (f?.type === "typing" && honestIds.has(f.user_id) && f.user_id !== h.s.user_id) {
          ledger.add("wrong", "ws.conversation.frame", `a typing frame relayed as from honest user ${f.user_id}, who never types`);
          break;
        }
      }
    }
    // receipts in honest conversations name honest users only
    for (const f of h.sync.frames) {
      if (f?.type === "receipt" && world.honestConvs.includes(f.conversation_id) && !honestIds.has(f.user_id)) {
        ledger.add("wrong", "http.markers", `receipt by ${f.user_id} in honest conversation ${f.conversation_id}`);
      }
    }
  }

  // ---- 3. replay from a cursor gives the same events as the live stream ---------------------
  for (const h of world.honest) {
    const live = h.sync.frames.filter((f) => typeof f?.cursor === "string");
    if (live.length < 2) continue;
    const pivot = live[Math.floor(live.length / 3)]!.cursor as string;
    const expected = live.slice(live.findIndex((f) => f.cursor === pivot) + 1);
    let replay: Socket | null = null;
    try {
      replay = await api.sync(h.s, pivot);
      await replay.waitForCount((f) => typeof f?.cursor === "string", expected.length, 15_000, "replayed events");
      const got = replay.frames.filter((f) => typeof f?.cursor === "string").slice(0, expected.length);
      const mismatch = got.findIndex((f, i) => f.cursor !== expected[i].cursor || f.type !== expected[i].type || (f.type === "message" && f.message.message_id !== expected[i].message.message_id));
      if (mismatch >= 0) ledger.add("disturbed", "honest", `${h.s.handle}: replay after cursor ${pivot} differs from the live stream at event ${mismatch}`, undefined, h.s.user_id);
      const cursors = live.map((f) => f.cursor);
      if (new Set(cursors).size !== cursors.length) ledger.add("disturbed", "honest", `${h.s.handle}: the device socket delivered a cursor twice`, undefined, h.s.user_id);
    } catch (err) {
      ledger.add("disturbed", "honest", `${h.s.handle}: replay after cursor ${pivot} failed: ${(err as Error).message.slice(0, 200)}`, undefined, h.s.user_id);
    } finally {
      await replay?.close();
    }
  }

  // ---- 4. honest acknowledged messages are stored as acknowledged ----------------------------
  const readerOf = new Map<string, Session>();
  for (const h of world.honest) for (const c of h.convs) if (!readerOf.has(c)) readerOf.set(c, h.s);
  for (const m of honest.sent) {
    const msgs = histories.get(m.conv) ?? (await history(readerOf.get(m.conv)!, m.conv)) ?? [];
    const stored = msgs.find((x) => x.seq === m.seq);
    if (!stored || stored.message_id !== m.messageId || stored.content !== m.content || stored.client_message_id !== m.cmid) {
      ledger.add("disturbed", "honest", `acknowledged message ${m.cmid} (seq ${m.seq} in ${m.conv}) is ${stored ? "stored differently" : "missing"}`, undefined, m.sender);
    }
  }

  // ---- 5. honest read markers: moved by their owners only ----------------------------------
  for (const h of world.honest) {
    let convs: any[] = [];
    try {
      convs = await listConversations(api, h.s);
    } catch {
      continue;
    }
    for (const conv of h.convs) {
      const mine = honest.markedRead.get(`${h.s.user_id}|${conv}`) ?? 0;
      const row = convs.find((c) => c.conversation_id === conv);
      if (!row) {
        ledger.add("disturbed", "honest", `${h.s.handle}: conversation ${conv} missing from its list`, undefined, h.s.user_id);
        continue;
      }
      if (row.last_read_seq < mine) ledger.add("disturbed", "honest", `${h.s.handle}: read marker in ${conv} is ${row.last_read_seq}, it set ${mine}`, undefined, h.s.user_id);
      if (row.last_read_seq > mine) ledger.add("wrong", "http.markers", `${h.s.handle}'s read marker in ${conv} is ${row.last_read_seq}, but it only ever set ${mine}`);
    }
  }

  // ---- 6. honest devices: exactly the two they made ------------------------------------------
  for (const h of world.honest) {
    const me = await api.get("/me", h.s.token);
    const ids = (me.json?.devices ?? []).map((d: any) => d.device_id).sort();
    const want = [h.s.device_id, h.phone.device_id].sort();
    if (me.status !== 200 || ids.join() !== want.join()) ledger.add("wrong", "http.login", `${h.s.handle}'s devices are ${ids.join(",")} (status ${me.status}), expected ${want.join(",")}`);
  }

  // ---- 7. every conversation an attacker touched: only acknowledged messages, gapless -------------
  const audits: { conv: string; reader: Session; label: string; honestOnly: boolean }[] = [];
  for (const c of world.honestConvs) audits.push({ conv: c, reader: readerOf.get(c)!, label: "honest", honestOnly: true });
  audits.push({ conv: world.mixed, reader: world.honest[0]!.s, label: "mixed", honestOnly: false });
  for (const a of world.attackers) {
    audits.push({ conv: a.ownGroup, reader: a.s, label: "attacker group", honestOnly: false });
    if (a.direct !== a.ownGroup) audits.push({ conv: a.direct, reader: a.s, label: "attacker direct", honestOnly: false });
  }
  const sessions = new Map<string, Session>([...world.attackers.map((a) => [a.s.user_id, a.s] as const)]);
  for (const c of ledger.createdConversations.slice(0, 150)) {
    const owner = sessions.get(c.owner);
    if (owner && !audits.some((x) => x.conv === c.conv)) audits.push({ conv: c.conv, reader: owner, label: "created by an attacker", honestOnly: false });
  }
  let audited = 0;
  let messages = 0;
  for (const au of audits) {
    let msgs: any[];
    try {
      msgs = await api.allMessages(au.reader, au.conv);
    } catch (err) {
      if (au.label === "created by an attacker") continue; // e.g. the creator was removed by nobody: still report below
      ledger.add("wrong", "audit", `cannot read ${au.label} conversation ${au.conv}: ${(err as Error).message.slice(0, 160)}`);
      continue;
    }
    audited += 1;
    messages += msgs.length;
    histories.set(au.conv, msgs);
    msgs.forEach((m, i) => {
      if (m.seq !== i + 1) ledger.add("wrong", "audit", `${au.label} conversation ${au.conv}: seq ${m.seq} at position ${i + 1} (gap or repeat)`);
    });
    for (const m of msgs) {
      const rec = ledger.lookup(au.conv, m.sender_id, m.client_message_id);
      if (au.honestOnly && !honestIds.has(m.sender_id)) {
        ledger.add("wrong", "audit", `honest conversation ${au.conv} holds seq ${m.seq} by non-member ${m.sender_id}`);
        continue;
      }
      if (!rec || !rec.accepted) {
        ledger.add("wrong", "audit", `${au.label} conversation ${au.conv}: seq ${m.seq} by ${m.sender_id} (${JSON.stringify(String(m.client_message_id).slice(0, 60))}) was ${rec?.rejected ? "REJECTED" : "never acknowledged"}, yet it is stored`);
        continue;
      }
      if (rec.messageId && rec.messageId !== m.message_id) ledger.add("wrong", "audit", `${au.conv} seq ${m.seq}: message_id ${m.message_id}, acknowledged as ${rec.messageId}`);
      if (rec.content !== undefined && rec.content !== m.content) ledger.add("wrong", "audit", `${au.conv} seq ${m.seq}: content differs from the acknowledgement`);
    }
    if (au.label === "honest" || au.label === "mixed") {
      const d = await api.get(`/conversations/${au.conv}`, au.reader.token);
      const got = new Set<string>((d.json?.members ?? []).map((x: any) => x.user_id));
      const want = world.initialMembers.get(au.conv)!;
      const added = [...got].filter((u) => !want.has(u));
      const removed = [...want].filter((u) => !got.has(u));
      if (added.length || removed.length) ledger.add("wrong", "audit", `${au.label} conversation ${au.conv}: members changed (+${added.join(",")} -${removed.join(",")})`);
    }
  }
  // Acknowledged sends are stored (in the conversations audited): an ack is a promise of durability.
  const storedIds = new Set<string>();
  for (const au of audits) for (const m of histories.get(au.conv) ?? []) storedIds.add(m.message_id);
  const auditedConvs = new Set(audits.filter((a) => histories.has(a.conv)).map((a) => a.conv));
  let rejected = 0;
  for (const [key, rec] of ledger.sends) {
    if (rec.rejected && !rec.accepted) rejected += 1;
    const conv = key.split("|")[0]!;
    if (rec.accepted && rec.messageId && auditedConvs.has(conv) && !storedIds.has(rec.messageId)) {
      ledger.add("violation", "audit", `acknowledged message ${rec.messageId} (${key.slice(0, 120)}) is not in the history`);
    }
  }
  log(`verify: audited ${audited} conversations holding ${messages} messages; ${ledger.sends.size} sends tracked, ${rejected} of them rejected`);

  // ---- 8. registrations: refused ones do not exist; accepted ones are as sent -----------------
  const anyAttacker = world.attackers[0]!.s;
  let regChecks = 0;
  for (const r of ledger.registers) {
    if (regChecks >= 300) break;
    if (!r.accepted && /^[a-z0-9_]{3,32}$/.test(r.handle)) {
      regChecks += 1;
      const res = await api.get(`/users?handle=${r.handle}`, anyAttacker.token);
      if (res.status !== 404) ledger.add("wrong", "http.register", `refused registration of ${r.handle} exists anyway (${res.status})`);
    } else if (r.accepted && r.userId && typeof r.display_name === "string") {
      regChecks += 1;
      const res = await api.get(`/users/${r.userId}`, anyAttacker.token);
      if (res.json?.display_name !== r.display_name) {
        ledger.add("wrong", "http.register", `display_name stored differently: sent ${JSON.stringify(r.display_name).slice(0, 60)}, stored ${JSON.stringify(res.json?.display_name).slice(0, 60)}`);
      }
    }
  }
}
