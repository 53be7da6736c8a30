/** Reconnect timing: exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"). */
export interface BackoffOptions {
  /** First retry's upper bound, ms. */
  baseMs?: number;
  /** No retry waits longer than this, ms. */
  capMs?: number;
  /** A connection that held this long resets the attempt count, ms. */
  resetAfterMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { baseMs: 500, capMs: 30_000, resetAfterMs: 5_000 };

export class Backoff {
  private attempt = 0;
  private connectedAt = 0;
  readonly options: Required<BackoffOptions>;

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.options = { ...DEFAULT_BACKOFF, ...options };
  }

  /** The wait before the next attempt: uniform in [0, min(cap, base·2^attempt)). */
  next(): number {
    const { baseMs, capMs } = this.options;
    const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor(this.random() * ceiling);
  }

  connected(now = Date.now()): void {
    this.connectedAt = now;
  }

  /** Called when a connection ends: one that held long enough starts the sequence over. */
  disconnected(now = Date.now()): void {
    if (this.connectedAt && now - this.connectedAt >= this.options.resetAfterMs) this.attempt = 0;
    this.connectedAt = 0;
  }

  reset(): void {
    this.attempt = 0;
  }
}
