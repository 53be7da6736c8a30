/**
 * Delivery of a conversation's feed to its members' inboxes, at least once and in
 * order; inboxes drop what they already have, so the effect is exactly once.
 *
 * Every write that owes an inbox something arms the object's alarm before the write is
 * acknowledged, then drains at once. If the object dies in between, the alarm wakes it
 * and the drain runs again from each member's confirmed position (`fed_upto`).
 *
 * What it costs: writes that arrive while a round of inbox calls is out join the next
 * round, so a busy conversation sends each inbox one batch per round, not one call per
 * message (a big group's round also waits a few ms for the writes right behind the first). Members at the same position get the same entries, read once. An inbox that
 * answers that no device socket is open there (nobody is reading its stream live) is sent
 * at most once per IDLE_INBOX_INTERVAL_MS: a busy room then costs its idle members a few
 * calls a second between them rather than one per message each.
 */
import { eventsFor, type ConversationStore, type FeedEntry, type MemberRow, type OwedEvent } from "./conversation-store";
import type { IngestAnswer } from "./inbox";
import { inboxStub } from "../shared/stubs";
import type { AlarmScheduler } from "./scheduler";
import { toWire, type WireEvent } from "./wire-events";

/** The safety net: how soon after a write the alarm re-drains if the immediate drain did not finish. */
const SAFETY_NET_MS = 2_000;
const MAX_BACKOFF_MS = 60_000;
const BATCH = 200;
const PARALLEL_INBOXES = 16;
/** Inboxes with no device socket open are sent to this many at a time. */
const IDLE_LANES = 2;
/** How often, at most, an inbox with no device socket open is sent what it is owed. */
export const IDLE_INBOX_INTERVAL_MS = 250;
/**
 * A round to at least this many inboxes waits COALESCE_MS for the writes right behind the
 * first: in a big group each round costs one call per member, so a burst is sent in fewer
 * rounds; small conversations start their round at once.
 */
const BIG_ROUND = 32;
const COALESCE_MS = 5;

export class FanOut {
  private running: Promise<void> | null = null;
  private again = false;
  private failures = 0;
  /** Members whose inbox last said no device socket is open there, and when that batch went. */
  private readonly idleSince = new Map<string, number>();
  /** The last round went to at least BIG_ROUND inboxes. */
  private bigRounds = false;
  /** A round is due in COALESCE_MS; later writes join it. */
  private coalescing = false;
  /** The round due when the first idle member's interval is over. */
  private idleTimer: { at: number; timer: ReturnType<typeof setTimeout> } | null = null;

  constructor(
    private readonly env: Env,
    private readonly store: ConversationStore,
    private readonly alarms: AlarmScheduler,
  ) {}

  /** After a write that owes inboxes events: arm the safety net, then drain without waiting. */
  async kick(): Promise<void> {
    await this.alarms.wakeAt(Date.now() + SAFETY_NET_MS);
    if (!this.bigRounds) return this.resume();
    if (this.coalescing) return;
    this.coalescing = true;
    setTimeout(() => {
      this.coalescing = false;
      this.resume();
    }, COALESCE_MS);
  }

  /** From the object's alarm: drain everyone; answers when to come back if anything is still owed. */
  async onAlarm(): Promise<number | null> {
    this.idleSince.clear();
    this.resume();
    await this.running;
    if (this.store.membersOwed().length === 0) return null;
    this.failures += 1;
    return Date.now() + Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.failures);
  }

  /**
   * A device of this member is connecting: whatever the idle interval held back goes now,
   * so that its replay holds every message acknowledged before it connected.
   */
  async flushFor(userId: string): Promise<void> {
    if (!this.idleSince.delete(userId)) return;
    this.resume();
    await this.running;
  }

  /** Starts draining (or, if a drain is running, makes it go round once more) without waiting. */
  resume(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
    });
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      const due = this.allIdle() ? [] : this.dueNow(this.store.membersOwed());
      if (due.length === 0) continue;
      this.bigRounds = due.length >= BIG_ROUND;
      const conversationId = this.store.id();
      const feed = new SharedFeed(this.store);
      // Confirmations are written together once the round is over: one statement, not one per inbox.
      const confirmed = new Map<string, number>();
      const send = (m: MemberRow) => this.catchUp(conversationId, m, feed, confirmed);
      // Nobody reads an idle inbox's stream live: its catch-up goes a few at a time, so that
      // the work of applying it does not stand, all at once, in front of live sends.
      const idle = due.filter((m) => this.idleSince.has(m.user_id));
      const live = due.filter((m) => !this.idleSince.has(m.user_id));
      const results = (await Promise.all([inParallel(live, PARALLEL_INBOXES, send), inParallel(idle, IDLE_LANES, send)])).flat();
      if (confirmed.size > 0) {
        this.store.confirmFedAll(confirmed);
      }
      if (results.every(Boolean)) this.failures = 0;
    } while (this.again);
  }

  /**
   * Whether every member's inbox was sent to within the idle interval (each said nobody
   * streams there): then nothing is due before the first of those intervals ends, which a
   * timer waits for, and the owed members need not be read — a busy room reads them once
   * per interval instead of once per message.
   */
  private allIdle(): boolean {
    const ids = this.store.activeMemberIds();
    if (ids.length === 0 || this.idleSince.size < ids.length) return false;
    const now = Date.now();
    let first = Number.POSITIVE_INFINITY;
    for (const id of ids) {
      const since = this.idleSince.get(id);
      if (since === undefined || now - since >= IDLE_INBOX_INTERVAL_MS) return false;
      first = Math.min(first, since);
    }
    this.resumeAt(first + IDLE_INBOX_INTERVAL_MS);
    return true;
  }

  /** The owed members to send to now; idle inboxes sent to within the interval wait for a later round. */
  private dueNow(owed: MemberRow[]): MemberRow[] {
    const now = Date.now();
    let next: number | null = null;
    const due = owed.filter((m) => {
      const since = this.idleSince.get(m.user_id);
      if (since === undefined || now - since >= IDLE_INBOX_INTERVAL_MS) return true;
      const at = since + IDLE_INBOX_INTERVAL_MS;
      if (next === null || at < next) next = at;
      return false;
    });
    if (next !== null) this.resumeAt(next);
    return due;
  }

  private resumeAt(at: number): void {
    if (this.idleTimer && this.idleTimer.at <= at) return;
    if (this.idleTimer) clearTimeout(this.idleTimer.timer);
    const timer = setTimeout(() => {
      this.idleTimer = null;
      this.resume();
    }, Math.max(0, at - Date.now()));
    this.idleTimer = { at, timer };
  }

  /** Sends one member's inbox everything it is owed; answers false if the inbox could not be reached. */
  private async catchUp(conversationId: string, member: MemberRow, feed: SharedFeed, confirmed: Map<string, number>): Promise<boolean> {
    const inbox = inboxStub(this.env, member.user_id);
    const end = member.feed_end ?? feed.last;
    let fed = member.fed_upto;
    try {
      while (fed < end) {
        const { events, upto } = feed.owedTo(member.user_id, fed, end);
        const sentAt = Date.now();
        const answer = (await inbox.ingest({ userId: member.user_id, conversationId, events, upto })) as IngestAnswer | undefined;
        fed = upto;
        confirmed.set(member.user_id, upto);
        if (answer && !answer.streaming) this.idleSince.set(member.user_id, sentAt);
        else this.idleSince.delete(member.user_id);
      }
      return true;
    } catch (err) {
      console.warn(`fan-out to ${member.user_id} in ${conversationId} failed; will retry`, err);
      return false;
    }
  }
}

/** The feed as one round reads it: each range once, whoever asks for it. */
class SharedFeed {
  /** The feed's end when the round began; later entries go in the next round. */
  readonly last: number;
  private readonly reads = new Map<string, FeedEntry[]>();

  constructor(private readonly store: ConversationStore) {
    this.last = store.lastFeedId();
  }

  /** Each entry's wire form, serialized once for every member it goes to. */
  private readonly wired = new Map<number, WireEvent>();

  owedTo(userId: string, after: number, end: number): { events: WireEvent[]; upto: number } {
    const key = `${after}:${end}`;
    let entries = this.reads.get(key);
    if (!entries) {
      entries = this.store.feedAfter(after, end, BATCH);
      this.reads.set(key, entries);
    }
    const { events, upto } = eventsFor(userId, entries, end, BATCH);
    return { events: events.map((e) => this.wire(e)), upto };
  }

  private wire(e: OwedEvent): WireEvent {
    let w = this.wired.get(e.feedId);
    if (!w) {
      w = toWire(e);
      this.wired.set(e.feedId, w);
    }
    return w;
  }
}

async function inParallel<T, R>(items: T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  });
  await Promise.all(lanes);
  return results;
}
