/**
 * The outbox: every send is stored with its `client_message_id` before it is tried, and
 * is retried with that same id — across reconnects and restarts — until the server
 * acknowledges it. The server's dedup by (sender, client_message_id) makes a retry of a
 * send whose answer was lost return the original message, so nothing is sent twice.
 * Per conversation, entries go one at a time in creation order, so the server's order
 * matches the order the user typed; conversations do not wait for each other.
 */
import { Backoff } from "./backoff";
import { asChatError, ChatError } from "./errors";
import type { ChatStorage } from "./storage";
import type { Message, OutboxEntry } from "./types";

export const OUTBOX_KEY = "outbox";

export interface OutboxHooks {
  /** Sends one entry; resolves with the stored message (201 or the original on 200). */
  send(entry: OutboxEntry): Promise<Message>;
  acked(entry: OutboxEntry, message: Message): void | Promise<void>;
  failed(entry: OutboxEntry, error: ChatError): void;
  changed(entries: OutboxEntry[]): void;
  /** Whether sending is worth trying now (e.g. not while the token is known bad). */
  canSend(): boolean;
}

interface Waiter {
  resolve: (m: Message) => void;
  reject: (e: ChatError) => void;
}

export class Outbox {
  private entries: OutboxEntry[] = [];
  private readonly busy = new Set<string>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly backoff = new Map<string, Backoff>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private closed = false;

  constructor(
    private readonly storage: ChatStorage,
    private readonly hooks: OutboxHooks,
  ) {}

  async load(): Promise<void> {
    this.entries = (await this.storage.read<OutboxEntry[]>(OUTBOX_KEY)) ?? [];
  }

  pending(conversationId?: string): OutboxEntry[] {
    return this.entries.filter((e) => conversationId === undefined || e.conversation_id === conversationId);
  }

  /** Stores the entry, then starts sending; resolves once it is acknowledged. */
  async add(entry: OutboxEntry): Promise<Message> {
    this.entries.push(entry);
    const acked = new Promise<Message>((resolve, reject) => this.waiters.set(entry.client_message_id, { resolve, reject }));
    await this.persist();
    this.pump();
    return acked;
  }

  /** Changes a stored entry (its encoded content, say) and stores the change. */
  update(entry: OutboxEntry, change: Partial<OutboxEntry>): void {
    Object.assign(entry, change);
    void this.persist();
  }

  /** Tries every conversation's head entry now (after a reconnect, say), skipping waits. */
  kick(): void {
    for (const [conversationId, timer] of this.timers) {
      clearTimeout(timer);
      this.timers.delete(conversationId);
    }
    this.pump();
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private pump(): void {
    if (this.closed || !this.hooks.canSend()) return;
    const heads = new Map<string, OutboxEntry>();
    for (const e of this.entries) if (!heads.has(e.conversation_id)) heads.set(e.conversation_id, e);
    for (const [conversationId, entry] of heads) {
      if (this.busy.has(conversationId) || this.timers.has(conversationId)) continue;
      void this.sendHead(conversationId, entry);
    }
  }

  private async sendHead(conversationId: string, entry: OutboxEntry): Promise<void> {
    this.busy.add(conversationId);
    entry.attempts++;
    try {
      const message = await this.hooks.send(entry);
      // Acked is announced before the entry leaves `pending()`, so a UI never loses sight of it.
      await this.hooks.acked(entry, message);
      await this.remove(entry);
      this.backoff.get(conversationId)?.reset();
      this.waiters.get(entry.client_message_id)?.resolve(message);
      this.waiters.delete(entry.client_message_id);
    } catch (err) {
      const error = asChatError(err);
      if (error.transient || error.code === "unauthorized") {
        this.retryLater(conversationId, error);
      } else {
        // Refused for good (not a member any more, too large…): resending cannot help.
        await this.remove(entry);
        this.hooks.failed(entry, error);
        this.waiters.get(entry.client_message_id)?.reject(error);
        this.waiters.delete(entry.client_message_id);
      }
    } finally {
      this.busy.delete(conversationId);
    }
    this.pump();
  }

  private retryLater(conversationId: string, error: ChatError): void {
    if (this.closed) return;
    let backoff = this.backoff.get(conversationId);
    if (!backoff) this.backoff.set(conversationId, (backoff = new Backoff({ baseMs: 250, capMs: 30_000 })));
    const wait = Math.max(backoff.next(), (error.retryAfter ?? 0) * 1000);
    this.timers.set(
      conversationId,
      setTimeout(() => {
        this.timers.delete(conversationId);
        this.pump();
      }, wait),
    );
  }

  private async remove(entry: OutboxEntry): Promise<void> {
    this.entries = this.entries.filter((e) => e !== entry);
    await this.persist();
  }

  private async persist(): Promise<void> {
    await this.storage.write({ [OUTBOX_KEY]: this.entries });
    this.hooks.changed([...this.entries]);
  }
}
