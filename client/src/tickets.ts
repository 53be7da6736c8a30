/**
 * Socket tickets (POST /v1/sync/ticket) for one socket: a ticket stands in for the token in
 * the socket URL, so the token never sits in a URL that proxies and logs may keep.
 *
 * A reconnect should not wait for an extra HTTP round trip on a network that just failed,
 * so a spare ticket is fetched as soon as one is used and the next attempt takes it. A
 * ticket is accepted once, within 60 s of issue; a spare older than SPARE_MAX_AGE_MS (by
 * this device's clock, so the server's clock does not matter) is not used.
 */
import { ChatError } from "./errors";
import type { Http } from "./http";

const SPARE_MAX_AGE_MS = 30_000;

export class SocketTickets {
  private spare: { ticket: string; fetchedAt: number } | null = null;
  private fetching: Promise<void> | null = null;

  constructor(private readonly http: Http) {}

  /**
   * The URL for the next attempt. A server too old to issue tickets (404/405), or one that
   * refuses the token (401: the upgrade then fails and the socket finds out why), gets
   * ?token=. Anything else (no network, 5xx, 429) throws, so the socket's backoff runs.
   */
  async url(path: string, query: Record<string, string | undefined>, token: string): Promise<string> {
    let ticket = this.takeSpare();
    if (!ticket) {
      try {
        ticket = await this.fetchTicket();
      } catch (err) {
        if (err instanceof ChatError && (err.status === 404 || err.status === 405 || err.status === 401)) {
          return this.http.socketUrl(path, { ...query, token });
        }
        throw err;
      }
    }
    this.prefetch();
    return this.http.socketUrl(path, { ...query, ticket });
  }

  private takeSpare(): string | null {
    const spare = this.spare;
    this.spare = null;
    return spare && Date.now() - spare.fetchedAt < SPARE_MAX_AGE_MS ? spare.ticket : null;
  }

  private async fetchTicket(): Promise<string> {
    return (await this.http.request<{ ticket: string }>("POST", "/v1/sync/ticket")).ticket;
  }

  /** Fetches the next attempt's ticket in the background; a failure just means fetching it then. */
  private prefetch(): void {
    this.fetching ??= this.fetchTicket()
      .then((ticket) => {
        this.spare = { ticket, fetchedAt: Date.now() };
      })
      .catch(() => undefined)
      .finally(() => {
        this.fetching = null;
      });
  }
}
