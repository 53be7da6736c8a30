/**
 * A socket ticket (`POST /v1/sync/ticket`): one small object per ticket, addressed by the
 * ticket itself, holding whom it stands for until it is redeemed — once: the object is
 * single-threaded, and redeeming deletes it — or until it expires (its alarm deletes it).
 * A ticket goes in a WebSocket URL instead of the long-lived token, so logs that keep URLs
 * keep nothing reusable.
 */
import { DurableObject } from "cloudflare:workers";
import { AlarmScheduler } from "./scheduler";

export interface TicketClaims {
  userId: string;
  deviceId: string;
  /** The token's expiry (s): a socket opened with the ticket lives no longer than the token. */
  exp: number;
}

interface Stored extends TicketClaims {
  expiresAt: number;
}

export class SocketTicket extends DurableObject<Env> {
  private readonly alarms = new AlarmScheduler(this.ctx.storage);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.alarms.register("expire", async () => {
      await this.ctx.storage.deleteAll();
      return null;
    });
  }

  async issue(claims: TicketClaims, expiresAt: number): Promise<void> {
    await this.ctx.storage.put<Stored>("ticket", { ...claims, expiresAt });
    await this.alarms.wakeAt(expiresAt);
  }

  /** Whom the ticket stands for, once; null when it is unknown, used or expired. */
  async redeem(): Promise<TicketClaims | null> {
    const stored = await this.ctx.storage.get<Stored>("ticket");
    if (!stored) return null;
    await this.alarms.clear();
    await this.ctx.storage.deleteAll();
    if (stored.expiresAt <= Date.now()) return null;
    return { userId: stored.userId, deviceId: stored.deviceId, exp: stored.exp };
  }

  override async alarm(): Promise<void> {
    await this.alarms.fire();
  }
}
