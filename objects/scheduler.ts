/**
 * The one alarm of a Durable Object, shared by everything in it that needs waking later.
 *
 * An object has a single alarm. When each part (fan-out retries, typing expiry, presence
 * grace, push retries, token expiry, upload expiry, call timeouts, archive moves) reads and
 * sets it on its own, one part's later `setAlarm` can replace another's earlier wake-up, and
 * whoever owns `alarm()` has to know every other part's next deadline. Here each part
 * registers a task once; `wakeAt(ms)` keeps the earliest time asked for (a later one is a
 * no-op); and `fire()`, the object's `alarm()`, runs every task and re-arms for the earliest
 * time they answer. Tasks check their own due work, so a task woken early (or after the
 * object was evicted and its in-memory state lost) simply finds nothing due and answers
 * its next time.
 */

/** Runs the owner's due work; answers when it next needs waking, or null for never. */
export type AlarmTask = (now: number) => Promise<number | null> | number | null;

/** A task that threw is tried again this much later, instead of failing the whole alarm. */
const TASK_RETRY_MS = 5_000;

export class AlarmScheduler {
  private readonly tasks: { name: string; run: AlarmTask }[] = [];
  /** The alarm as this instance last set or read it; undefined until read from storage. */
  private armedAt: number | null | undefined = undefined;

  constructor(private readonly storage: DurableObjectStorage) {}

  /** Adds a part's task; tasks run in the order added (a later one may rely on an earlier one's work). */
  register(name: string, run: AlarmTask): void {
    this.tasks.push({ name, run });
  }

  /** Makes sure the alarm fires no later than `at`; a wake-up already due sooner stays. */
  async wakeAt(at: number): Promise<void> {
    if (this.armedAt === undefined) this.armedAt = await this.storage.getAlarm();
    if (this.armedAt !== null && this.armedAt <= at) return;
    this.armedAt = at;
    await this.storage.setAlarm(at);
  }

  /** Cancels every wake-up: for an object that has just deleted all it holds. */
  async clear(): Promise<void> {
    this.armedAt = null;
    await this.storage.deleteAlarm();
  }

  /** The object's `alarm()`: every task's due work, then the alarm set for the earliest next time. */
  async fire(): Promise<void> {
    // The alarm that is running is no longer set: wake-ups asked for from here on must set it again.
    this.armedAt = null;
    const now = Date.now();
    let next: number | null = null;
    for (const task of this.tasks) {
      let at: number | null;
      try {
        at = await task.run(now);
      } catch (err) {
        console.warn(`alarm task ${task.name} failed; it runs again in ${TASK_RETRY_MS} ms`, err);
        at = Date.now() + TASK_RETRY_MS;
      }
      if (at !== null && (next === null || at < next)) next = at;
    }
    if (next !== null) await this.wakeAt(next);
  }
}
