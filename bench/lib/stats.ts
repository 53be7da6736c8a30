/** Latency summaries. Samples that never arrived count as +Infinity, so they push p99 up. */
export interface Summary {
  n: number;
  /** Samples that never arrived within the drain window (counted as +Infinity). */
  missing: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

/** Nearest-rank percentile of an ascending array. */
function pct(sorted: Float64Array, p: number): number {
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function summarize(samples: ArrayLike<number>, missing = 0): Summary {
  const n = samples.length + missing;
  if (n === 0) return { n: 0, missing: 0, p50: null, p90: null, p99: null, max: null, mean: null };
  const sorted = new Float64Array(n);
  sorted.set(samples as ArrayLike<number>);
  sorted.fill(Infinity, samples.length);
  sorted.sort();
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i]!;
  const round = (v: number) => (Number.isFinite(v) ? Math.round(v * 100) / 100 : v);
  return {
    n,
    missing,
    p50: round(pct(sorted, 50)),
    p90: round(pct(sorted, 90)),
    p99: round(pct(sorted, 99)),
    max: round(sorted[n - 1]!),
    mean: samples.length ? round(sum / samples.length) : null,
  };
}

/** JSON cannot hold Infinity: write it as the string "inf". */
export function jsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? "inf" : v)));
}
