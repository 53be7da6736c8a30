/**
 * Issue 12, part 3: one alarm per object, shared by every part that needs waking. The
 * scheduler must keep the earliest wake-up asked for, write storage only when that moves
 * earlier, run every part's task from the one alarm and re-arm for the earliest answer.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AlarmScheduler } from "../../objects/scheduler";

/** Just the alarm part of DurableObjectStorage, counting writes. */
function fakeStorage(initial: number | null = null) {
  const state = { alarm: initial, sets: 0, reads: 0 };
  const storage = {
    getAlarm: async () => {
      state.reads += 1;
      return state.alarm;
    },
    setAlarm: async (at: number) => {
      state.sets += 1;
      state.alarm = at;
    },
    deleteAlarm: async () => {
      state.alarm = null;
    },
  } as unknown as DurableObjectStorage;
  return { state, storage };
}

describe("AlarmScheduler", () => {
  it("keeps the earliest wake-up and writes storage only when it moves earlier", async () => {
    const { state, storage } = fakeStorage();
    const alarms = new AlarmScheduler(storage);
    await alarms.wakeAt(5_000);
    await alarms.wakeAt(9_000);
    await alarms.wakeAt(7_000);
    expect(state).toMatchObject({ alarm: 5_000, sets: 1 });
    await alarms.wakeAt(3_000);
    expect(state).toMatchObject({ alarm: 3_000, sets: 2, reads: 1 });
  });

  it("respects an alarm set before the object woke (read once from storage)", async () => {
    const { state, storage } = fakeStorage(2_000);
    const alarms = new AlarmScheduler(storage);
    await alarms.wakeAt(4_000);
    await alarms.wakeAt(6_000);
    expect(state).toMatchObject({ alarm: 2_000, sets: 0, reads: 1 });
  });

  it("runs every task in order from one alarm and re-arms for the earliest next time", async () => {
    const { state, storage } = fakeStorage();
    const alarms = new AlarmScheduler(storage);
    const ran: string[] = [];
    const now = Date.now();
    alarms.register("a", () => (ran.push("a"), now + 30_000));
    alarms.register("b", async () => (ran.push("b"), null));
    alarms.register("c", () => (ran.push("c"), now + 10_000));
    await alarms.wakeAt(now);
    await alarms.fire();
    expect(ran).toEqual(["a", "b", "c"]);
    expect(state.alarm).toBe(now + 10_000);
  });

  it("a task that throws does not stop the others and is tried again soon", async () => {
    const { state, storage } = fakeStorage();
    const alarms = new AlarmScheduler(storage);
    let later = false;
    alarms.register("broken", () => {
      throw new Error("boom");
    });
    alarms.register("later", () => ((later = true), null));
    const before = Date.now();
    await alarms.fire();
    expect(later).toBe(true);
    expect(state.alarm).toBeGreaterThanOrEqual(before + 5_000);
    expect(state.alarm).toBeLessThan(before + 6_000);
  });

  it("a wake-up asked for while the alarm runs is set again, even if later than the one that fired", async () => {
    const { state, storage } = fakeStorage();
    const alarms = new AlarmScheduler(storage);
    await alarms.wakeAt(1_000);
    alarms.register("asks", async () => {
      await alarms.wakeAt(50_000);
      return null;
    });
    await alarms.fire();
    expect(state.alarm).toBe(50_000);
  });

  it("with no task due again, leaves no alarm behind; clear() cancels one", async () => {
    const { state, storage } = fakeStorage();
    const alarms = new AlarmScheduler(storage);
    alarms.register("done", () => null);
    await alarms.fire();
    expect(state.alarm).toBeNull();
    await alarms.wakeAt(8_000);
    await alarms.clear();
    expect(state.alarm).toBeNull();
    await alarms.wakeAt(9_000);
    expect(state.alarm).toBe(9_000);
  });
});

describe("Limiter's alarm through the scheduler", () => {
  it("sets the alarm once for a run of takes and forgets the bucket only a minute after the last one", async () => {
    const stub = env.LIMITER.get(env.LIMITER.idFromName(`scheduler-test-${crypto.randomUUID()}`));
    await stub.take(10);
    const first = await runInDurableObject(stub, (_o, state) => state.storage.getAlarm());
    await stub.take(10);
    const second = await runInDurableObject(stub, (_o, state) => state.storage.getAlarm());
    expect(second).toBe(first);
    // The alarm fires while the last take is not yet a minute old: the bucket stays, re-armed for later.
    await runInDurableObject(stub, async (object) => {
      await object.alarm();
    });
    const after = await runInDurableObject(stub, async (_o, state) => ({
      alarm: await state.storage.getAlarm(),
      rows: state.storage.sql.exec("SELECT count(*) AS n FROM rate_buckets").one().n,
    }));
    expect(after.rows).toBe(1);
    expect(after.alarm).not.toBeNull();
  });
});
