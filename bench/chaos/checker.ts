/**
 * The chaos run's checker, in the manner of Jepsen's queue checker: given what clients
 * tried to send, what the server acknowledged, what each conversation's history holds
 * (read by two members) and what every device received on its device socket, it counts
 * per conversation the messages that were
 *
 *   lost        acked but not stored, or stored but missing from some member's device stream
 *   duplicated  stored twice for one (sender, client_message_id), or received twice (same seq) by a device
 *   unexpected  stored or delivered though no client ever sent it (or with other content / ids than stored)
 *   reordered   history seq not exactly 1..n, two readers' histories differing, a device stream not in
 *               ascending seq, an ack naming another seq than the one stored, a sender's acked messages
 *               stored out of the order they were acked in
 *
 * Each category is split into the kinds above (`detail`), with a few samples of each for diagnosis.
 * It is a pure function of its input, so it can be tested on made-up histories.
 */

/** The parts of a CONTRACT.md section 5 message the checker looks at. */
export interface StoredMessage {
  message_id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  client_message_id: string;
  content: string;
}

export interface ConversationInfo {
  id: string;
  /** A label for tables, e.g. "direct c03-c07" or "group g1". */
  label: string;
  /** User ids of every member: each one's device must receive every message. */
  members: string[];
}

/** One message a client set out to send (acked or not). */
export interface Attempt {
  conversation_id: string;
  sender_id: string;
  client_message_id: string;
  content: string;
}

/** One acknowledgement (HTTP 201/200 or a `sent` frame). `order` is the sender's own sending order. */
export interface Ack {
  conversation_id: string;
  sender_id: string;
  client_message_id: string;
  seq: number;
  message_id: string;
  order: number;
}

/** A `message` event as one user's device received it, in arrival order. */
export interface Delivery {
  user_id: string;
  conversation_id: string;
  seq: number;
  message_id: string;
  sender_id: string;
  client_message_id: string;
  content: string;
  /** Which connection of the device socket (1, 2, …) it came on. */
  connection: number;
}

export interface CheckInput {
  conversations: ConversationInfo[];
  attempts: Attempt[];
  acks: Ack[];
  /** Each conversation's full history as read by each of (at least) two readers; the first is the reference. */
  histories: { conversation_id: string; reader: string; messages: StoredMessage[] }[];
  deliveries: Delivery[];
}

export const CATEGORIES = ["lost", "duplicated", "unexpected", "reordered"] as const;
export type Category = (typeof CATEGORIES)[number];

export const DETAIL_KINDS = {
  lost: ["acked_not_stored", "not_delivered"],
  duplicated: ["stored_twice", "delivered_twice"],
  unexpected: ["stored_never_sent", "stored_altered", "delivered_not_stored", "delivered_altered"],
  reordered: ["history_not_1_to_n", "readers_differ", "device_out_of_order", "ack_seq_mismatch", "sender_order"],
} as const satisfies Record<Category, readonly string[]>;

export type Counts = Record<Category, number>;

export interface ConversationReport {
  conversation_id: string;
  label: string;
  members: number;
  stored: number;
  acked: number;
  counts: Counts;
  detail: Record<string, number>;
}

export interface Anomaly {
  category: Category;
  kind: string;
  conversation_id: string;
  user_id?: string;
  seq?: number;
  sender_id?: string;
  client_message_id?: string;
  note?: string;
}

export interface CheckResult {
  ok: boolean;
  totals: Counts;
  detail: Record<string, number>;
  conversations: ConversationReport[];
  /** At most `samplesPerKind` anomalies of each kind. */
  samples: Anomaly[];
  /** Messages set out to be sent that were never acknowledged (the client gave up): indeterminate, not a loss. */
  unacked: { total: number; stored: number };
  stats: { attempts: number; acks: number; stored: number; deliveries: number };
}

const key = (sender: string, cmid: string) => `${sender}\u0000${cmid}`;
const zero = (): Counts => ({ lost: 0, duplicated: 0, unexpected: 0, reordered: 0 });

export function check(input: CheckInput, samplesPerKind = 10): CheckResult {
  const totals = zero();
  const detail: Record<string, number> = {};
  for (const [cat, kinds] of Object.entries(DETAIL_KINDS)) for (const k of kinds) detail[`${cat}.${k}`] = 0;
  const samples: Anomaly[] = [];
  const sampled = new Map<string, number>();
  let storedTotal = 0;
  let unackedTotal = 0;
  let unackedStored = 0;

  const attemptsByConv = groupBy(input.attempts, (a) => a.conversation_id);
  const acksByConv = groupBy(input.acks, (a) => a.conversation_id);
  const historiesByConv = groupBy(input.histories, (h) => h.conversation_id);
  const deliveriesByConv = groupBy(input.deliveries, (d) => d.conversation_id);
  const known = new Set(input.conversations.map((c) => c.id));

  const reports: ConversationReport[] = [];
  const convs = [...input.conversations];
  // Deliveries or histories for conversations nobody created are unexpected too.
  for (const id of new Set([...deliveriesByConv.keys(), ...historiesByConv.keys()])) {
    if (!known.has(id)) convs.push({ id, label: `unknown ${id}`, members: [] });
  }

  for (const conv of convs) {
    const counts = zero();
    const local: Record<string, number> = {};
    const note = (category: Category, kind: string, n: number, a: Omit<Anomaly, "category" | "kind" | "conversation_id">) => {
      if (n <= 0) return;
      counts[category] += n;
      totals[category] += n;
      const k = `${category}.${kind}`;
      local[k] = (local[k] ?? 0) + n;
      detail[k] = (detail[k] ?? 0) + n;
      const s = sampled.get(k) ?? 0;
      if (s < samplesPerKind) {
        sampled.set(k, s + 1);
        samples.push({ category, kind, conversation_id: conv.id, ...a });
      }
    };

    const attempts = new Map((attemptsByConv.get(conv.id) ?? []).map((a) => [key(a.sender_id, a.client_message_id), a]));
    const acks = acksByConv.get(conv.id) ?? [];
    const readers = historiesByConv.get(conv.id) ?? [];
    const history = readers[0]?.messages ?? [];
    storedTotal += history.length;

    // ---- the history itself --------------------------------------------------
    const bySeq = new Map<number, StoredMessage>();
    const byClientId = new Map<string, StoredMessage[]>();
    let misplaced = 0;
    history.forEach((m, i) => {
      if (m.seq !== i + 1) misplaced++;
      bySeq.set(m.seq, m);
      const k = key(m.sender_id, m.client_message_id);
      byClientId.set(k, [...(byClientId.get(k) ?? []), m]);
    });
    note("reordered", "history_not_1_to_n", misplaced, { note: `history seqs are not 1..${history.length}: ${misplaced} out of place` });

    for (const [k, copies] of byClientId) {
      if (copies.length > 1) {
        const m = copies[0]!;
        note("duplicated", "stored_twice", copies.length - 1, {
          sender_id: m.sender_id,
          client_message_id: m.client_message_id,
          note: `stored at seqs ${copies.map((c) => c.seq).join(", ")}`,
        });
      }
      const sent = attempts.get(k);
      for (const m of copies) {
        if (!sent) {
          note("unexpected", "stored_never_sent", 1, { seq: m.seq, sender_id: m.sender_id, client_message_id: m.client_message_id });
        } else if (m.content !== sent.content || m.conversation_id !== conv.id) {
          note("unexpected", "stored_altered", 1, { seq: m.seq, sender_id: m.sender_id, client_message_id: m.client_message_id, note: "content or conversation differs from what was sent" });
        }
      }
    }

    // ---- other readers see the same history ----------------------------------
    for (const other of readers.slice(1)) {
      const n = Math.max(history.length, other.messages.length);
      let differing = 0;
      for (let i = 0; i < n; i++) {
        const a = history[i];
        const b = other.messages[i];
        if (!a || !b || a.message_id !== b.message_id || a.seq !== b.seq || a.content !== b.content) differing++;
      }
      note("reordered", "readers_differ", differing, { user_id: other.reader, note: `${differing} positions differ from ${readers[0]!.reader}'s history` });
    }

    // ---- every ack is in the history, at the seq it named, in sending order ------
    for (const ack of acks) {
      const stored = byClientId.get(key(ack.sender_id, ack.client_message_id));
      if (!stored) {
        note("lost", "acked_not_stored", 1, { seq: ack.seq, sender_id: ack.sender_id, client_message_id: ack.client_message_id });
      } else if (!stored.some((m) => m.seq === ack.seq && m.message_id === ack.message_id)) {
        note("reordered", "ack_seq_mismatch", 1, {
          seq: ack.seq,
          sender_id: ack.sender_id,
          client_message_id: ack.client_message_id,
          note: `acked as seq ${ack.seq}, stored at ${stored.map((m) => m.seq).join(", ")}`,
        });
      }
    }
    for (const [sender, theirs] of groupBy(acks, (a) => a.sender_id)) {
      let last = 0;
      for (const ack of [...theirs].sort((x, y) => x.order - y.order)) {
        const seq = byClientId.get(key(sender, ack.client_message_id))?.[0]?.seq;
        if (seq === undefined) continue;
        if (seq < last) note("reordered", "sender_order", 1, { seq, sender_id: sender, client_message_id: ack.client_message_id, note: `acked after a message stored at seq ${last}` });
        last = Math.max(last, seq);
      }
    }
    const ackedKeys = new Set(acks.map((a) => key(a.sender_id, a.client_message_id)));
    for (const k of attempts.keys()) {
      if (!ackedKeys.has(k)) {
        unackedTotal++;
        if (byClientId.has(k)) unackedStored++;
      }
    }

    // ---- every member's device got every stored message, once, in order -------
    const deliveries = groupBy(deliveriesByConv.get(conv.id) ?? [], (d) => d.user_id);
    for (const user of new Set([...conv.members, ...deliveries.keys()])) {
      const got = deliveries.get(user) ?? [];
      const seen = new Map<number, number>();
      let maxSeq = 0;
      for (const d of got) {
        const times = (seen.get(d.seq) ?? 0) + 1;
        seen.set(d.seq, times);
        if (times > 1) {
          note("duplicated", "delivered_twice", 1, { user_id: user, seq: d.seq, sender_id: d.sender_id, client_message_id: d.client_message_id, note: `copy ${times}, on connection ${d.connection}` });
          continue;
        }
        if (d.seq < maxSeq) note("reordered", "device_out_of_order", 1, { user_id: user, seq: d.seq, note: `after seq ${maxSeq}` });
        maxSeq = Math.max(maxSeq, d.seq);
        const stored = bySeq.get(d.seq);
        if (!stored) {
          const sent = attempts.has(key(d.sender_id, d.client_message_id));
          note("unexpected", "delivered_not_stored", 1, { user_id: user, seq: d.seq, sender_id: d.sender_id, client_message_id: d.client_message_id, note: sent ? "sent, but not in the history at this seq" : "never sent" });
        } else if (stored.message_id !== d.message_id || stored.client_message_id !== d.client_message_id || stored.sender_id !== d.sender_id || stored.content !== d.content) {
          note("unexpected", "delivered_altered", 1, { user_id: user, seq: d.seq, sender_id: d.sender_id, client_message_id: d.client_message_id, note: `history has ${stored.message_id} at this seq` });
        }
      }
      if (!conv.members.includes(user)) continue;
      const missing = history.filter((m) => !seen.has(m.seq));
      if (missing.length) {
        note("lost", "not_delivered", missing.length, {
          user_id: user,
          seq: missing[0]!.seq,
          note: `${missing.length} stored messages never reached this member's device, seqs ${summarize(missing.map((m) => m.seq))}`,
        });
      }
    }

    reports.push({ conversation_id: conv.id, label: conv.label, members: conv.members.length, stored: history.length, acked: acks.length, counts, detail: local });
  }

  const ok = CATEGORIES.every((c) => totals[c] === 0);
  return {
    ok,
    totals,
    detail,
    conversations: reports,
    samples,
    unacked: { total: unackedTotal, stored: unackedStored },
    stats: { attempts: input.attempts.length, acks: input.acks.length, stored: storedTotal, deliveries: input.deliveries.length },
  };
}

function groupBy<T>(items: T[], by: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = by(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/** "1-5, 9, 12-13" */
export function summarize(nums: number[], max = 12): string {
  const sorted = [...new Set(nums)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.length > max ? `${parts.slice(0, max).join(", ")}, … (${parts.length - max} more ranges)` : parts.join(", ");
}

/** The per-conversation table and the totals, as text. */
export function formatReport(result: CheckResult): string {
  const cols = ["conversation", "members", "stored", "acked", ...CATEGORIES];
  const rows: string[][] = result.conversations.map((c) => [
    c.label,
    String(c.members),
    String(c.stored),
    String(c.acked),
    ...CATEGORIES.map((k) => String(c.counts[k])),
  ]);
  const sum = (f: (c: ConversationReport) => number) => String(result.conversations.reduce((n, c) => n + f(c), 0));
  rows.push(["TOTAL", "", sum((c) => c.stored), sum((c) => c.acked), ...CATEGORIES.map((k) => String(result.totals[k]))]);
  const widths = cols.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join("  ");
  const out = [line(cols), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(0, -1).map(line), widths.map((w) => "-".repeat(w)).join("  "), line(rows.at(-1)!)];

  out.push("", "by kind:");
  for (const cat of CATEGORIES) {
    const kinds = DETAIL_KINDS[cat].map((k) => `${k}=${result.detail[`${cat}.${k}`] ?? 0}`).join("  ");
    out.push(`  ${cat.padEnd(10)} ${String(result.totals[cat]).padStart(6)}   ${kinds}`);
  }
  out.push(`  ${"unacked".padEnd(10)} ${String(result.unacked.total).padStart(6)}   (client gave up; ${result.unacked.stored} of them stored anyway)`);
  if (result.samples.length) {
    out.push("", "samples:");
    for (const s of result.samples.slice(0, 40)) {
      const where = [s.user_id && `user ${s.user_id}`, s.seq !== undefined && `seq ${s.seq}`, s.client_message_id && `cmid ${s.client_message_id}`].filter(Boolean).join(", ");
      out.push(`  ${s.category}.${s.kind} in ${s.conversation_id}: ${where}${s.note ? ` — ${s.note}` : ""}`);
    }
  }
  return out.join("\n");
}
