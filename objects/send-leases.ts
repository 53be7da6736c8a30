/**
 * The send bucket (SEND_RATE_PER_MINUTE) lives in the sender's Inbox, one per user across
 * every conversation. A Conversation takes a busy sender's tokens in blocks (a lease),
 * so a sender who keeps sending costs one inbox call per block rather than one per
 * message; one who sends now and then still costs one call per send. A block doubles each
 * time one is spent within LEASE_MS, up to a sixteenth of the bucket; what is left unspent
 * after LEASE_MS goes back with the next request. Leases live in memory only: an evicted
 * conversation forgets its unspent tokens, which only ever costs the sender, never lets
 * them past the limit.
 */
import type { LeaseResult, TakeResult } from "./rate-limit";

const LEASE_MS = 2_000;

interface Lease {
  tokens: number;
  size: number;
  at: number;
  pending: Promise<LeaseResult> | null;
}

export class SendLeases {
  private readonly leases = new Map<string, Lease>();
  private readonly maxBlock: number;

  constructor(
    perMinute: number,
    private readonly request: (userId: string, want: number, giveBack: number) => Promise<LeaseResult>,
  ) {
    this.maxBlock = Math.max(1, Math.min(64, Math.floor(perMinute / 16)));
  }

  /** One token of this sender's, from the lease if it has one left, else from their inbox. */
  async take(userId: string): Promise<TakeResult> {
    for (;;) {
      const lease = this.leases.get(userId) ?? { tokens: 0, size: 1, at: 0, pending: null };
      this.leases.set(userId, lease);
      const fresh = Date.now() - lease.at < LEASE_MS;
      if (lease.tokens > 0 && fresh) {
        lease.tokens -= 1;
        return { ok: true };
      }
      if (lease.pending) {
        const answer = await lease.pending;
        if (!answer.ok) return answer;
        continue;
      }
      // Spent within LEASE_MS: a busy sender, so a bigger block; otherwise back to single tokens.
      lease.size = lease.tokens === 0 && fresh ? Math.min(this.maxBlock, lease.size * 2) : 1;
      const giveBack = lease.tokens;
      lease.tokens = 0;
      lease.pending = this.request(userId, lease.size, giveBack);
      try {
        const answer = await lease.pending;
        if (!answer.ok) return answer;
        lease.tokens = answer.granted - 1;
        lease.at = Date.now();
        return { ok: true };
      } finally {
        lease.pending = null;
      }
    }
  }
}
