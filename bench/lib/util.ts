/** Small helpers shared by the orchestrator and the client processes. */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BENCH = join(ROOT, "bench");

/**
 * Wall-clock milliseconds with sub-millisecond resolution. Every process on this machine
 * derives it from the same clock, so a timestamp taken in one client process can be
 * subtracted from one taken in another.
 */
export const now = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const started = now();

/** A progress line on stderr, prefixed with the time since the run began. */
export function progress(line: string): void {
  const s = ((now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${s}s] ${line}\n`);
}

/** Runs `work` over `items` with at most `width` in flight. */
export async function inParallel<T, R>(items: T[], width: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!, i);
    }
  });
  await Promise.all(lanes);
  return results;
}

export const fmtMs = (v: number | null | undefined): string =>
  v === null || v === undefined ? "–" : !Number.isFinite(v) ? "∞" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
