/**
 * Delivery of a conversation's feed to its members' inboxes, at least once and in
 * order; inboxes drop what they already have, so the effect is exactly once.
 *
 * Every write that owes an inbox something arms the object's alarm before the write is
 * acknowledged, then drains at once. If the object dies in between, the alarm wakes it
 * and the drain runs again from each member's confirmed position (`fed_upto`).
 */
import type { ConversationStore, MemberRow } from "./conversation-store";

/** The safety net: how soon after a write the alarm re-drains if the immediate drain did not finish. */
const SAFETY_NET_MS = 2_000;
const MAX_BACKOFF_MS = 60_000;
const BATCH = 200;
const PARALLEL_INBOXES = 16;
const COALESCE_MS = 5;

export class FanOut {
  private running: Promise<void> | null = null;
  private again = false;
  private failures = 0;
  /** A round of inbox RPCs is due in COALESCE_MS; later writes join it. */
  private scheduled = false;
  /** The alarm this instance knows is set; null when it must ask storage. */
  private alarmAt: number | null = null;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
    private readonly store: ConversationStore,
  ) {}

  /** After a write that owes inboxes events: arm the safety net, then drain without waiting. */
  async kick(): Promise<void> {
    await this.wakeAt(Date.now() + SAFETY_NET_MS);
    // Writes arriving within a few ms share one round of inbox RPCs.
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      this.resume();
    }, COALESCE_MS);
  }

  /** Makes sure the alarm fires no later than `at`. */
  async wakeAt(at: number): Promise<void> {
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    const current = await this.ctx.storage.getAlarm();
    if (current !== null && current <= at) {
      this.alarmAt = current;
      return;
    }
    await this.ctx.storage.setAlarm(at);
    this.alarmAt = at;
  }

  /** From the object's alarm: drain, then re-arm if anything is still owed or another wake-up is due. */
  async onAlarm(nextWake: number | null): Promise<void> {
    this.alarmAt = null;
    this.resume();
    await this.running;
    if (this.store.membersOwed().length > 0) {
      this.failures += 1;
      await this.wakeAt(Date.now() + Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.failures));
    }
    if (nextWake !== null) await this.wakeAt(nextWake);
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
      const owed = this.store.membersOwed();
      // Confirmations are written together once the round is over: one commit, not one per inbox.
      const confirmed = new Map<string, number>();
      const results = await inParallel(owed, PARALLEL_INBOXES, (m) => this.catchUp(m, confirmed));
      if (confirmed.size > 0) {
        this.ctx.storage.transactionSync(() => {
          for (const [userId, upto] of confirmed) this.store.confirmFed(userId, upto);
        });
      }
      if (results.every(Boolean)) this.failures = 0;
    } while (this.again);
  }

  /** Sends one member's inbox everything it is owed; answers false if the inbox could not be reached. */
  private async catchUp(member: MemberRow, confirmed: Map<string, number>): Promise<boolean> {
    const conversationId = this.store.info()!.id;
    const inbox = this.env.INBOX.get(this.env.INBOX.idFromName(member.user_id));
    let fed = member.fed_upto;
    let current: MemberRow | null = member;
    try {
      while (current && fed < (current.feed_end ?? this.store.lastFeedId())) {
        const { events, upto } = this.store.owedTo({ ...current, fed_upto: fed }, BATCH);
        await inbox.ingest({ userId: member.user_id, conversationId, events, upto });
        fed = upto;
        confirmed.set(member.user_id, upto);
        current = this.store.member(member.user_id);
      }
      return true;
    } catch (err) {
      console.warn(`fan-out to ${member.user_id} in ${conversationId} failed; will retry`, err);
      return false;
    }
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
