/**
 * Everything the oracle keeps while the run goes: the issues found (crashes, honest clients
 * disturbed, things wrongly stored, other contract violations), the cases sent by category,
 * and every send with its outcome, so that the end can prove what was stored and what not.
 */
import { mangleLoneSurrogates } from "./values.ts";

/**
 * `devserver`: a failure of the local dev server's own proxy (wrangler's ProxyWorker answering
 * 500 "Network connection lost." from miniflare's entry worker, a known flake of `wrangler dev`
 * on loaded machines, workers-sdk #8087/#15317/#15452): no answer of the Worker's, so no crash
 * of it, but reported.
 */
export type IssueKind = "crash" | "disturbed" | "wrong" | "violation" | "devserver";

export interface Issue {
  kind: IssueKind;
  category: string;
  detail: string;
  case?: Record<string, unknown>;
}

export interface CategoryStats {
  cases: number;
  crash: number;
  violation: number;
  wrong: number;
  /** Time spent on the category's cases, and the slowest one. */
  ms: number;
  maxMs: number;
  slowest?: Record<string, unknown>;
  /** Answers seen: HTTP statuses, `101`, WS `error:code`, `sent`, `close:code`... */
  answers: Record<string, number>;
}

export interface SendOutcome {
  accepted: boolean;
  rejected: boolean;
  /** From the acknowledgement: what the server said it stored. */
  messageId?: string;
  seq?: number;
  content?: string;
  /** What was sent, when known. */
  sentContent?: unknown;
}

const MAX_DETAILS_PER_KIND = 300;

export class Ledger {
  readonly issues: Issue[] = [];
  readonly counts: Record<IssueKind, number> = { crash: 0, disturbed: 0, wrong: 0, violation: 0, devserver: 0 };
  readonly categories = new Map<string, CategoryStats>();
  readonly sends = new Map<string, SendOutcome>();
  readonly registers: { handle: string; display_name?: unknown; accepted: boolean; acceptable: boolean; userId?: string }[] = [];
  readonly createdConversations: { conv: string; owner: string }[] = [];
  /** Honest users affected, for the headline. */
  readonly disturbedUsers = new Set<string>();
  requests = 0;
  frames = 0;

  static key(conv: string, sender: string, cmid: string): string {
    return `${conv}|${sender}|${cmid}`;
  }

  stats(category: string): CategoryStats {
    let s = this.categories.get(category);
    if (!s) {
      s = { cases: 0, crash: 0, violation: 0, wrong: 0, ms: 0, maxMs: 0, answers: {} };
      this.categories.set(category, s);
    }
    return s;
  }

  answer(category: string, answer: string): void {
    const s = this.stats(category);
    s.answers[answer] = (s.answers[answer] ?? 0) + 1;
  }

  add(kind: IssueKind, category: string, detail: string, c?: Record<string, unknown>, user?: string): void {
    this.counts[kind] += 1;
    if (kind === "disturbed" && user) this.disturbedUsers.add(user);
    const s = this.categories.get(category);
    if (s && (kind === "crash" || kind === "violation" || kind === "wrong")) s[kind] += 1;
    if (this.issues.filter((i) => i.kind === kind).length < MAX_DETAILS_PER_KIND) this.issues.push({ kind, category, detail, ...(c ? { case: c } : {}) });
  }

  /** A send the server acknowledged; `message` is what it answered. Flags a second stored copy. */
  accept(conv: string, sender: string, cmid: string, message: any, sentContent?: unknown, category = "sends"): void {
    const keys = new Set([Ledger.key(conv, sender, cmid)]);
    if (message && typeof message.client_message_id === "string") keys.add(Ledger.key(conv, sender, message.client_message_id));
    for (const key of keys) {
      const prev = this.sends.get(key);
      if (prev?.accepted && prev.messageId && message?.message_id && prev.messageId !== message.message_id) {
        this.add("wrong", category, `client_message_id ${JSON.stringify(cmid)} of ${sender} in ${conv} stored twice: ${prev.messageId} and ${message.message_id}`);
      }
      this.sends.set(key, {
        ...(prev ?? { rejected: false }),
        accepted: true,
        messageId: prev?.messageId ?? message?.message_id,
        seq: prev?.seq ?? message?.seq,
        content: prev?.content ?? message?.content,
        sentContent: prev?.sentContent ?? sentContent,
      });
    }
  }

  reject(conv: string, sender: string, cmid: string): void {
    const key = Ledger.key(conv, sender, cmid);
    const prev = this.sends.get(key);
    this.sends.set(key, { ...(prev ?? { accepted: false }), rejected: true });
  }

  /** Whether a stored message was acknowledged, allowing for the server's mangling of lone surrogates. */
  lookup(conv: string, sender: string, cmid: string): SendOutcome | undefined {
    return this.sends.get(Ledger.key(conv, sender, cmid)) ?? this.sends.get(Ledger.key(conv, sender, mangleLoneSurrogates(cmid)));
  }
}
