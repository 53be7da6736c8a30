/**
 * The app's state, kept from the SDK's events: the conversation list, the loaded window of
 * each opened conversation, the sends still in the outbox, typing and presence. Components
 * read it and re-render on `subscribe`; every change bumps `version`.
 *
 * Everything goes through the SDK (`@edge-chat/sdk`, client/src): the app makes no request
 * of its own.
 */
import { MediaState } from "./media-state";
import {
  type Call,
  type CallEndReason,
  ChatClient,
  ChatError,
  IndexedDBStorage,
  type ChatMessage,
  type ChatStorage,
  type ConnectionState,
  type Conversation,
  type ConversationSummary,
  type MessageStatus,
  type OpenConversation,
  type OutboxEntry,
  type Presence,
  type PrivacySettings,
  type User,
} from "@edge-chat/sdk";

export type Phase = "loading" | "signed-out" | "ready";

/** The call on screen: one at a time (a ring while busy is declined). */
export interface CallView {
  call: Call;
  /** Our own capture (null: none was allowed; we only listen). */
  local: MediaStream | null;
  remote: MediaStream | null;
  /** Bumped when the remote stream gains a track, so the video element picks it up. */
  remoteTracks: number;
  muted: boolean;
  cameraOn: boolean;
  connectedAt: number | null;
  /** Accept was pressed: capture is being asked for. */
  answering: boolean;
  /** The conversation socket the call signals on, once it has one. */
  conv: OpenConversation | null;
  off: () => void;
}

/** A ring with no word from the server this long after it arrived is over (the server's is 45 s). */
const RING_FALLBACK_MS = 50_000;

/** A send shown before the server has it: an outbox entry, or one that failed for good. */
export interface PendingSend extends OutboxEntry {
  failed?: string;
}

const PAGE = 40;
/** A typing `start` not renewed within this long is over (the server's expiry is 6 s). */
const TYPING_TTL_MS = 6_500;
const PRESENCE_REFRESH_MS = 60_000;

export function activityOf(c: ConversationSummary): number {
  return c.last_message?.created_at ?? c.created_at ?? 0;
}

/** A user id as the server writes it into a message ("u_" and 26 base32 characters). */
const USER_ID = /\bu_[a-z2-7]{26}\b/g;

/** A server message as a sentence: capitalised, with a full stop. */
const sentence = (text: string) => `${text.charAt(0).toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? "" : "."}`;

/**
 * An error in words for people. `name` puts a user id that a server message names (a 403's
 * "u_… does not accept being added to groups by you") as the person's name.
 */
export function describeError(err: unknown, name: (userId: string) => string = () => "someone"): string {
  if (err instanceof ChatError) {
    switch (err.code) {
      case "unauthorized":
        return "Wrong handle or password.";
      case "conflict":
        return "That handle is taken.";
      case "rate_limited":
        return `Too many attempts; try again in ${err.retryAfter ?? 60} s.`;
      case "network":
        return "Cannot reach the server. Check your connection.";
      case "forbidden":
        // The server's reason is a plain sentence, and the one people need to see: "the other
        // member of this conversation blocked you", "… does not accept being added to groups by you".
        return err.message ? sentence(err.message.replace(USER_ID, name)) : "You are not allowed to do that.";
      case "limit_exceeded":
        // The server names the limit ("at most 256 members", "at most 100 devices per user", …).
        return err.message ? sentence(err.message) : "A limit was reached.";
      case "invalid_request":
        return err.message || "The server refused that request.";
      default:
        return err.message || err.code;
    }
  }
  return err instanceof Error ? err.message : String(err);
}

export class AppModel {
  phase: Phase = "loading";
  chat: ChatClient | null = null;
  connection: ConnectionState = "disconnected";
  /** What the browser says of the network (a socket can look open while it is down). */
  online = typeof navigator === "undefined" ? true : navigator.onLine;
  /** Summaries by conversation id; `sortedConversations()` orders them. */
  conversations = new Map<string, ConversationSummary>();
  listLoaded = false;
  users = new Map<string, User>();
  presence = new Map<string, Presence>();
  /** The loaded window of each conversation opened this session: ascending seq, contiguous to the newest. */
  messages = new Map<string, ChatMessage[]>();
  hasOlder = new Map<string, boolean>();
  loadingOlder = new Set<string>();
  /** Sends the server has not acknowledged yet, by client_message_id. */
  pending = new Map<string, PendingSend>();
  /** Own client_message_ids the server has acknowledged, so a late outbox event cannot bring them back. */
  private acked = new Set<string>();
  /** Who is typing where: conversation → user → when it ends. */
  typing = new Map<string, Map<string, number>>();
  openId: string | null = null;
  /** Section 17: this user's settings (null until read) and whom they blocked (user id → when). */
  privacy: PrivacySettings | null = null;
  blocked = new Map<string, number>();
  /** Requests whose banner was dismissed with Accept this session (see `acceptRequest`). */
  private accepted = new Set<string>();
  /** The first read of the block list since sign-in (it never fails: errors are logged). */
  private privacyRead: Promise<void> = Promise.resolve();
  call: CallView | null = null;
  /** A short word after a call ends ("Call ended", "No answer"), shown for a few seconds. */
  callNotice: string | null = null;
  private callStarting = false;
  private ringer: Ringer | null = null;
  private openConv: OpenConversation | null = null;
  private readSent = new Map<string, number>();
  private unsubscribers: (() => void)[] = [];
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private presenceTimer: ReturnType<typeof setInterval> | null = null;
  private userRequests = new Map<string, Promise<User | null>>();
  version = 0;
  private listeners = new Set<() => void>();
  private notifyQueued = false;

  constructor(
    readonly baseUrl: string,
    private readonly storage: ChatStorage = new IndexedDBStorage("edge-chat"),
  ) {}

  // ---- subscription ------------------------------------------------------------

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    this.version++;
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      for (const fn of this.listeners) fn();
    });
  }

  // ---- session -------------------------------------------------------------------

  /** The stored session, if any (reload keeps you signed in). */
  async start(): Promise<void> {
    let chat: ChatClient | null = null;
    // Said in the console, so that a page stuck on "Loading…" shows where it stopped.
    console.debug("edge-chat: restoring the stored session");
    try {
      chat = await ChatClient.restore({ baseUrl: this.baseUrl, storage: this.storage });
    } catch (err) {
      console.warn("edge-chat: could not restore the session", err);
    }
    console.debug(`edge-chat: ${chat ? "session restored" : "no stored session"}`);
    if (!chat) {
      this.phase = "signed-out";
      this.changed();
      return;
    }
    await this.attach(chat);
  }

  async register(handle: string, password: string, displayName?: string): Promise<void> {
    const chat = await ChatClient.register({ baseUrl: this.baseUrl, handle, password, displayName: displayName || undefined, storage: this.storage });
    await this.attach(chat);
  }

  async login(handle: string, password: string): Promise<void> {
    const chat = await ChatClient.login({ baseUrl: this.baseUrl, handle, password, deviceName: deviceName(), storage: this.storage });
    await this.attach(chat);
  }

  async logout(): Promise<void> {
    const chat = this.chat;
    this.detach();
    this.reset();
    this.phase = "signed-out";
    this.changed();
    try {
      await chat?.logout();
    } catch (err) {
      console.warn("edge-chat: logout did not reach the server", err);
    }
  }

  private reset(): void {
    this.conversations.clear();
    this.listLoaded = false;
    this.users.clear();
    this.presence.clear();
    this.messages.clear();
    this.hasOlder.clear();
    this.pending.clear();
    this.acked.clear();
    this.typing.clear();
    this.readSent.clear();
    this.openId = null;
    this.privacy = null;
    this.blocked.clear();
    this.accepted.clear();
    this.media.clear();
  }

  private detach(): void {
    if (this.call) {
      this.call.call.hangup();
      this.dropCall(this.call);
    }
    for (const off of this.unsubscribers.splice(0)) off();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.presenceTimer) clearInterval(this.presenceTimer);
    this.presenceTimer = null;
    this.openConv?.close();
    this.openConv = null;
    void this.chat?.close();
    this.chat = null;
  }

  private async attach(chat: ChatClient): Promise<void> {
    this.detach();
    this.reset();
    this.chat = chat;
    this.users.set(chat.userId, { user_id: chat.userId, handle: chat.handle, display_name: null });
    const on = this.unsubscribers;
    on.push(chat.on("message", (m) => this.onMessage(m)));
    on.push(chat.on("updated", (m) => this.onUpdated(m)));
    on.push(chat.on("status", (s) => {
      if (s.status === "pending") {
        // In the outbox already (before it is stored): show it at once.
        const entry = chat.pending(s.conversation_id).find((e) => e.client_message_id === s.client_message_id);
        if (entry && !this.acked.has(entry.client_message_id)) this.pending.set(entry.client_message_id, { ...entry });
      } else if (s.status === "sent" && s.message) this.onMessage(s.message);
      else if (s.status === "failed") {
        const p = this.pending.get(s.client_message_id);
        if (p) this.pending.set(s.client_message_id, { ...p, failed: s.error ? this.explain(s.error) : "not sent" });
      }
      this.changed();
    }));
    on.push(chat.on("outbox", (entries) => this.onOutbox(entries)));
    on.push(chat.on("receipt", (r) => {
      if (r.user_id === chat.userId && r.kind === "read") {
        const c = this.conversations.get(r.conversation_id);
        if (c) {
          c.last_read_seq = Math.max(c.last_read_seq, r.up_to_seq);
          if (r.up_to_seq >= (c.last_message?.seq ?? 0)) c.unread_count = 0;
        }
      }
      this.changed();
    }));
    on.push(chat.on("conversation", (c) => {
      const fresh = !this.conversations.has(c.conversation_id);
      this.upsertConversation(c);
      // The event carries no list flags: a new direct conversation may be a request (section 17).
      if (fresh && c.type === "direct") void this.refreshList();
    }));
    on.push(chat.on("call", (call) => this.onIncomingCall(call)));
    on.push(chat.on("removed", ({ conversation_id }) => {
      this.conversations.delete(conversation_id);
      this.messages.delete(conversation_id);
      if (this.openId === conversation_id) this.openConversation(null);
      this.changed();
    }));
    on.push(chat.on("state", (state) => {
      const was = this.connection;
      this.connection = state;
      // An open socket proves the network works, whatever navigator.onLine said (it can be
      // false on a machine whose only network is loopback, or stale after a reload).
      if (state === "connected") this.online = true;
      if (state === "connected" && was !== "connected") void this.refreshList();
      if (state === "failed") void this.sessionLost();
      this.changed();
    }));
    on.push(chat.on("typing", (t) => {
      if (t.user_id === chat.userId) return;
      const byUser = this.typing.get(t.conversation_id) ?? new Map<string, number>();
      this.typing.set(t.conversation_id, byUser);
      if (t.state === "start") {
        byUser.set(t.user_id, Date.now() + TYPING_TTL_MS);
        this.later(TYPING_TTL_MS + 50, () => this.expireTyping());
      } else byUser.delete(t.user_id);
      this.changed();
    }));
    on.push(chat.on("presence", (p) => {
      this.presence.set(p.user_id, { status: p.status, last_seen: p.last_seen });
      this.changed();
    }));
    // A network that comes back: reconnect now rather than at the end of a backoff wait,
    // and the outbox goes out on `connected`.
    const online = () => {
      this.online = true;
      this.changed();
      chat.reconnect();
    };
    const offline = () => {
      this.online = false;
      this.changed();
    };
    window.addEventListener("offline", offline);
    on.push(() => window.removeEventListener("offline", offline));
    const visible = () => this.markOpenRead();
    window.addEventListener("online", online);
    document.addEventListener("visibilitychange", visible);
    window.addEventListener("focus", visible);
    on.push(() => window.removeEventListener("online", online));
    on.push(() => document.removeEventListener("visibilitychange", visible));
    on.push(() => window.removeEventListener("focus", visible));

    for (const entry of chat.pending()) this.pending.set(entry.client_message_id, entry);
    this.connection = chat.state;
    this.phase = "ready";
    this.changed();
    this.presenceTimer = setInterval(() => void this.refreshPresence(), PRESENCE_REFRESH_MS);
    this.privacyRead = this.loadPrivacy();
    void this.refreshList();
    void chat.me().then(
      (me) => {
        this.users.set(me.user_id, { user_id: me.user_id, handle: me.handle, display_name: me.display_name });
        this.changed();
      },
      (err) => {
        if (err instanceof ChatError && err.status === 401) void this.sessionLost();
      },
    );
    chat.connect().catch(() => void this.sessionLost());
  }

  /** The token was refused (device revoked, expired): back to the sign-in form. */
  private async sessionLost(): Promise<void> {
    if (!this.chat) return;
    const chat = this.chat;
    this.detach();
    this.reset();
    this.phase = "signed-out";
    this.changed();
    await chat.logout().catch(() => undefined);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  // ---- conversation list ----------------------------------------------------------

  sortedConversations(): ConversationSummary[] {
    // A blocked user's direct conversation is off the list (the server's too, a moment later).
    return [...this.conversations.values()].filter((c) => !this.hiddenByBlock(c)).sort((a, b) => activityOf(b) - activityOf(a) || (b.last_message?.seq ?? 0) - (a.last_message?.seq ?? 0));
  }

  private listRefresh: Promise<void> | null = null;
  private listAgain = false;

  /** Reloads the list from the server; calls while one runs make one more run after it. */
  refreshList(): Promise<void> {
    if (this.listRefresh) {
      this.listAgain = true;
      return this.listRefresh;
    }
    this.listRefresh = this.loadList().finally(() => {
      this.listRefresh = null;
      if (this.listAgain) {
        this.listAgain = false;
        void this.refreshList();
      }
    });
    return this.listRefresh;
  }

  private async loadList(): Promise<void> {
    const chat = this.chat;
    if (!chat) return;
    try {
      const seen = new Set<string>();
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const res = await chat.listConversations({ limit: 100, cursor });
        if (chat !== this.chat) return;
        for (const c of res.conversations) {
          seen.add(c.conversation_id);
          const known = this.conversations.get(c.conversation_id);
          // The list may trail a message by up to a second: never go back to an older last message.
          if (known?.last_message && (c.last_message?.seq ?? 0) < known.last_message.seq) {
            this.conversations.set(c.conversation_id, { ...c, last_message: known.last_message, unread_count: known.unread_count });
          } else this.conversations.set(c.conversation_id, c);
          if (this.isReading(c.conversation_id)) this.conversations.get(c.conversation_id)!.unread_count = 0;
        }
        if (!res.next_cursor) break;
        cursor = res.next_cursor;
      }
      // A blocked user's conversation stays known (not listed): it may be on screen, and comes back on unblocking.
      // Which ones those are is known once the block list is read.
      await this.privacyRead;
      if (chat !== this.chat) return;
      if (!cursor) for (const [id, c] of [...this.conversations]) if (!seen.has(id) && !this.hiddenByBlock(c)) this.conversations.delete(id);
      this.listLoaded = true;
      this.changed();
      for (const c of this.conversations.values()) this.namesOf(c);
      void this.refreshPresence();
    } catch (err) {
      console.warn("edge-chat: could not load the conversation list", err);
    }
  }

  private upsertConversation(c: Conversation): void {
    const known = this.conversations.get(c.conversation_id);
    this.conversations.set(c.conversation_id, {
      ...c,
      last_message: known?.last_message ?? null,
      unread_count: known?.unread_count ?? 0,
      last_read_seq: known?.last_read_seq ?? 0,
      request: known?.request ?? false,
      created_at: c.created_at ?? known?.created_at ?? Date.now(),
    });
    this.namesOf(c);
    this.changed();
    const peer = this.peerOf(c);
    if (!known && peer && !this.presence.has(peer)) void this.presenceOf(peer);
  }

  private async presenceOf(userId: string): Promise<void> {
    const chat = this.chat;
    try {
      const p = await chat?.presence(userId);
      if (!p || chat !== this.chat) return;
      this.presence.set(userId, p);
      this.changed();
    } catch {
      // not shared (yet), or offline
    }
  }

  /** The other member of a direct conversation. */
  peerOf(c: Pick<Conversation, "type" | "members">): string | null {
    if (c.type !== "direct" || !this.chat) return null;
    return c.members.find((m) => m.user_id !== this.chat!.userId)?.user_id ?? null;
  }

  titleOf(c: Pick<Conversation, "type" | "members" | "name">): string {
    if (c.type === "group") return c.name || "Group";
    const peer = this.peerOf(c);
    if (!peer) return c.name || "Saved messages";
    return this.nameOf(peer);
  }

  nameOf(userId: string): string {
    const u = this.users.get(userId);
    if (!u) {
      void this.user(userId);
      return "…";
    }
    return u.display_name || u.handle;
  }

  user(userId: string): Promise<User | null> {
    const known = this.users.get(userId);
    if (known) return Promise.resolve(known);
    let req = this.userRequests.get(userId);
    if (!req && this.chat) {
      req = this.chat.getUser(userId).then(
        (u) => {
          this.users.set(userId, u);
          this.changed();
          return u;
        },
        () => {
          this.userRequests.delete(userId);
          return null;
        },
      );
      this.userRequests.set(userId, req);
    }
    return req ?? Promise.resolve(null);
  }

  private namesOf(c: Pick<Conversation, "members" | "type">): void {
    // Direct peers for the list; group members are looked up as their messages show.
    const peer = this.peerOf(c);
    if (peer) void this.user(peer);
  }

  async refreshPresence(): Promise<void> {
    const chat = this.chat;
    if (!chat) return;
    const peers = new Set<string>();
    for (const c of this.sortedConversations().slice(0, 30)) {
      const peer = this.peerOf(c);
      if (peer) peers.add(peer);
    }
    for (const peer of peers) await this.presenceOf(peer);
  }

  // ---- privacy and blocks (CONTRACT.md section 17) -------------------------------------

  /** describeError, with the people a server message names by their names. */
  explain(err: unknown): string {
    return describeError(err, (id) => {
      const u = this.users.get(id);
      return u ? u.display_name || `@${u.handle}` : "someone";
    });
  }

  /** Reads the settings and the block list: at sign-in, and when the privacy panel opens. */
  async loadPrivacy(): Promise<void> {
    const chat = this.chat;
    if (!chat) return;
    try {
      const [settings, blocks] = await Promise.all([chat.privacy.get(), chat.blocks.list()]);
      if (chat !== this.chat) return;
      this.privacy = settings;
      this.blocked = new Map(blocks.map((b) => [b.user_id, b.created_at]));
      for (const b of blocks) void this.user(b.user_id);
      this.changed();
    } catch (err) {
      console.warn("edge-chat: could not read the privacy settings", err);
    }
  }

  async setPrivacy(change: Partial<PrivacySettings>): Promise<void> {
    const chat = this.need();
    const settings = await chat.privacy.set(change);
    if (chat !== this.chat) return;
    this.privacy = settings;
    this.changed();
  }

  isBlocked(userId: string | null): boolean {
    return userId !== null && this.blocked.has(userId);
  }

  /** A direct conversation with a blocked user: known, but not on the list. */
  private hiddenByBlock(c: Pick<Conversation, "type" | "members">): boolean {
    return this.isBlocked(this.peerOf(c));
  }

  async block(userId: string): Promise<void> {
    const chat = this.need();
    await chat.blocks.add(userId);
    this.blocked.set(userId, Date.now());
    this.changed();
    this.listChangedByBlock();
  }

  async unblock(userId: string): Promise<void> {
    const chat = this.need();
    await chat.blocks.remove(userId);
    this.blocked.delete(userId);
    this.changed();
    this.listChangedByBlock();
  }

  /**
   * The server takes the blocked user's direct conversation off the list (or puts it back),
   * and the device stream does not say so: reload the list now, and once more a moment later,
   * since the user's inbox applies the change just after the block's answer.
   */
  private listChangedByBlock(): void {
    void this.refreshList();
    this.later(1_000, () => void this.refreshList());
  }

  /** A request whose recipient has neither replied nor pressed Accept. */
  isRequest(c: ConversationSummary): boolean {
    return c.request && !this.accepted.has(c.conversation_id);
  }

  /**
   * Accept: the contract has no such request — a request ends when its recipient sends a
   * message (then the sender is their contact). Sending something in the user's name they did
   * not write would be worse than nothing, so Accept only puts the banner and the list's
   * "Request" tag away for this session; the chat view then focuses the composer for the reply
   * that really accepts.
   */
  acceptRequest(id: string): void {
    this.accepted.add(id);
    this.changed();
  }

  // ---- starting conversations -------------------------------------------------------

  async startDirect(handle: string): Promise<string> {
    const chat = this.need();
    const h = normalizeHandle(handle);
    if (!h) throw new Error("Enter a handle.");
    const user = await chat.findUser(h);
    if (!user) throw new Error(`Nobody is called @${h}.`);
    this.users.set(user.user_id, user);
    const c = await chat.createDirect(user.user_id);
    this.upsertConversation(c);
    void this.refreshPresence();
    return c.conversation_id;
  }

  async createGroup(name: string, handles: string[]): Promise<string> {
    const chat = this.need();
    const wanted = [...new Set(handles.map(normalizeHandle).filter(Boolean))];
    const ids: string[] = [];
    const unknown: string[] = [];
    for (const h of wanted) {
      const u = await chat.findUser(h);
      if (u) {
        this.users.set(u.user_id, u);
        if (u.user_id !== chat.userId) ids.push(u.user_id);
      } else unknown.push(h);
    }
    if (unknown.length) throw new Error(`Nobody is called ${unknown.map((h) => `@${h}`).join(", ")}.`);
    const c = await chat.createGroup(name.trim() || "Group", ids);
    this.upsertConversation(c);
    return c.conversation_id;
  }

  private need(): ChatClient {
    if (!this.chat) throw new Error("Not signed in.");
    return this.chat;
  }

  // ---- an open conversation -----------------------------------------------------------

  /** Shows a conversation (or none): opens its socket (typing, presence, receipts) and loads its newest page. */
  openConversation(id: string | null): void {
    if (id === this.openId) return;
    // The socket a call signals on stays open until the call ends (the SDK shares one per conversation).
    if (this.openConv && this.openConv !== this.call?.conv) this.openConv.close();
    this.openConv = null;
    this.openId = id;
    this.changed();
    const chat = this.chat;
    if (!id || !chat) return;
    this.openConv = chat.open(id);
    if (!this.messages.has(id)) void this.loadNewest(id);
    else this.markOpenRead();
    if (!this.conversations.has(id)) {
      // Opened from a link or a notification before the list knew it.
      chat.getConversation(id).then(
        (c) => this.upsertConversation(c),
        () => undefined,
      );
    }
    for (const m of this.conversations.get(id)?.members ?? []) void this.user(m.user_id);
  }

  private async loadNewest(id: string): Promise<void> {
    const chat = this.chat;
    if (!chat) return;
    try {
      const page = await chat.history(id, { limit: PAGE });
      if (chat !== this.chat) return;
      this.merge(id, page);
      this.hasOlder.set(id, page.length >= PAGE);
      this.changed();
      this.markOpenRead();
    } catch (err) {
      console.warn("edge-chat: could not load history", err);
      if (!this.messages.has(id)) this.messages.set(id, []);
      this.changed();
    }
  }

  async loadOlder(id: string): Promise<void> {
    const chat = this.chat;
    const loaded = this.messages.get(id);
    if (!chat || !loaded || this.loadingOlder.has(id) || this.hasOlder.get(id) === false) return;
    const first = loaded[0]?.seq;
    if (first === undefined) return;
    this.loadingOlder.add(id);
    this.changed();
    try {
      const page = await chat.history(id, { beforeSeq: first, limit: PAGE });
      if (chat !== this.chat) return;
      this.merge(id, page);
      this.hasOlder.set(id, page.length >= PAGE && (page[0]?.seq ?? 1) > 1);
    } catch (err) {
      console.warn("edge-chat: could not load older messages", err);
    } finally {
      this.loadingOlder.delete(id);
      this.changed();
    }
  }

  private merge(id: string, incoming: ChatMessage[]): void {
    const bySeq = new Map<number, ChatMessage>();
    for (const m of this.messages.get(id) ?? []) bySeq.set(m.seq, m);
    for (const m of incoming) bySeq.set(m.seq, m);
    this.messages.set(id, [...bySeq.values()].sort((a, b) => a.seq - b.seq));
    const me = this.chat?.userId;
    for (const m of incoming) {
      if (m.sender_id === me) this.settle(m.client_message_id);
    }
  }

  /** An own send is now a message: its pending entry goes. */
  private settle(clientMessageId: string): void {
    this.acked.add(clientMessageId);
    this.pending.delete(clientMessageId);
  }

  private onMessage(m: ChatMessage): void {
    const chat = this.chat;
    if (!chat) return;
    const mine = m.sender_id === chat.userId;
    if (mine) this.settle(m.client_message_id);
    if (this.messages.has(m.conversation_id)) {
      const list = this.messages.get(m.conversation_id)!;
      const last = list[list.length - 1];
      if (!last || m.seq > last.seq) list.push(m);
      else if (!list.some((x) => x.seq === m.seq)) this.merge(m.conversation_id, [m]);
      this.messages.set(m.conversation_id, [...list]);
    }
    const c = this.conversations.get(m.conversation_id);
    if (c) {
      const newer = m.seq > (c.last_message?.seq ?? 0);
      if (newer) {
        c.last_message = m as ConversationSummary["last_message"];
        // Section 17: a request ends when its recipient sends in it.
        if (mine) c.request = false;
        if (!mine && counts(m) && m.seq > c.last_read_seq && !this.isReading(m.conversation_id)) c.unread_count++;
      }
    } else {
      // A conversation the list does not have yet (created elsewhere): fetch its summary.
      void this.refreshList();
    }
    if (!mine) {
      const byUser = this.typing.get(m.conversation_id);
      if (byUser?.delete(m.sender_id)) this.changed();
    }
    this.changed();
    if (this.openId === m.conversation_id) this.markOpenRead();
  }

  /** An edit, delete or reaction (section 13): the message as it now is replaces the one shown. */
  private onUpdated(m: ChatMessage): void {
    const list = this.messages.get(m.conversation_id);
    if (list?.some((x) => x.seq === m.seq)) this.messages.set(m.conversation_id, list.map((x) => (x.seq === m.seq ? m : x)));
    const c = this.conversations.get(m.conversation_id);
    if (c?.last_message?.seq === m.seq) c.last_message = m as ConversationSummary["last_message"];
    this.changed();
  }

  private onOutbox(entries: OutboxEntry[]): void {
    for (const e of entries) {
      if (!this.acked.has(e.client_message_id)) this.pending.set(e.client_message_id, { ...this.pending.get(e.client_message_id), ...e });
    }
    // Entries that left the outbox stay shown until their message (or their failure) arrives.
    this.changed();
  }

  /** Whether the user is looking at this conversation now (then its messages are read). */
  isReading(id: string): boolean {
    return this.openId === id && typeof document !== "undefined" && document.visibilityState === "visible";
  }

  /** Read marker up to the newest message of the open conversation, when it is on screen. */
  markOpenRead(): void {
    const chat = this.chat;
    const id = this.openId;
    if (!chat || !id || !this.isReading(id)) return;
    const list = this.messages.get(id) ?? [];
    const c = this.conversations.get(id);
    const top = Math.max(list[list.length - 1]?.seq ?? 0, c?.last_message?.seq ?? 0);
    if (c && c.unread_count) {
      c.unread_count = 0;
      this.changed();
    }
    if (top <= 0 || top <= (this.readSent.get(id) ?? 0) || top <= (c?.last_read_seq ?? 0)) return;
    this.readSent.set(id, top);
    chat.markRead(id, top).catch(() => {
      // try again with the next message or visibility change
      if (this.readSent.get(id) === top) this.readSent.delete(id);
    });
  }

  pendingFor(id: string): PendingSend[] {
    return [...this.pending.values()].filter((p) => p.conversation_id === id).sort((a, b) => a.created_at - b.created_at);
  }

  statusOf(m: ChatMessage): MessageStatus {
    return this.chat?.statusOf(m) ?? "sent";
  }

  send(id: string, text: string): void {
    const chat = this.need();
    this.typed(false);
    chat.sendText(id, text).catch((err) => {
      console.warn("edge-chat: send failed", err);
    });
  }

  /** Section 13: whether this user may delete `m` (their own, or any as a group admin). */
  canDelete(m: ChatMessage): boolean {
    const me = this.chat?.userId;
    if (!me || m.deleted || (m.kind !== "text" && m.kind !== "media" && m.kind !== "encrypted")) return false;
    const c = this.conversations.get(m.conversation_id);
    return m.sender_id === me || (c?.type === "group" && c.members.some((x) => x.user_id === me && x.role === "admin"));
  }

  /** Section 13: an edit, a delete or this user's reaction (null removes it); the server's `updated` redraws it. */
  changeMessage(m: ChatMessage, change: { edit: string } | { delete: true } | { react: string | null }): void {
    const chat = this.need();
    const done =
      "edit" in change
        ? chat.editMessage(m.conversation_id, m.seq, change.edit)
        : "delete" in change
          ? chat.deleteMessage(m.conversation_id, m.seq)
          : chat.react(m.conversation_id, m.seq, change.react);
    done.catch((err) => {
      console.warn("edge-chat: change failed", err);
      this.notice("Could not change the message");
    });
  }

  /** Files being uploaded and sent (media.ts shows them), and the blob URLs of media fetched. */
  readonly media = new MediaState(() => this.need(), () => this.changed());

  /** Drops a failed send from view. */
  dismiss(clientMessageId: string): void {
    this.pending.delete(clientMessageId);
    this.changed();
  }

  /** Call on every keystroke in the composer. */
  typed(active: boolean): void {
    const conv = this.openConv;
    if (!conv) return;
    this.typingWanted = active;
    if (conv.state === "connected" || !active) return conv.typing(active);
    // The SDK drops a typing frame sent before its socket is open (and then waits 3 s to renew):
    // say it once the socket is up, if the user is still typing then.
    void conv.ready().then(
      () => {
        if (this.openConv === conv && this.typingWanted) conv.typing(true);
      },
      () => undefined,
    );
  }
  private typingWanted = false;

  typingIn(id: string): string[] {
    const byUser = this.typing.get(id);
    if (!byUser) return [];
    const now = Date.now();
    return [...byUser.entries()].filter(([, until]) => until > now).map(([user]) => user);
  }

  private expireTyping(): void {
    const now = Date.now();
    let any = false;
    for (const byUser of this.typing.values()) {
      for (const [user, until] of byUser) {
        if (until <= now) {
          byUser.delete(user);
          any = true;
        }
      }
    }
    if (any) this.changed();
  }

  // ---- calls (CONTRACT.md section 11) -------------------------------------------------

  /** Rings the conversation's other member, with our camera (video) or microphone. */
  async startCall(id: string, video: boolean): Promise<void> {
    const chat = this.need();
    if (this.call || this.callStarting) return;
    this.callStarting = true;
    this.changed();
    try {
      const local = await capture(video);
      if (chat !== this.chat) return stopTracks(local);
      const call = await chat.calls.start(id, { video, stream: local });
      if (chat !== this.chat) {
        call.hangup();
        return stopTracks(local);
      }
      const view = this.track(call, local);
      view.conv = chat.open(id);
    } catch (err) {
      console.warn("edge-chat: could not start the call", err);
      this.notice("Could not start the call");
    } finally {
      this.callStarting = false;
      this.changed();
    }
  }

  get callBusy(): boolean {
    return this.call !== null || this.callStarting;
  }

  async acceptCall(): Promise<void> {
    const view = this.call;
    const chat = this.chat;
    if (!view || !chat || view.answering || view.call.direction !== "incoming" || view.call.state !== "ringing") return;
    view.answering = true;
    this.changed();
    this.ringer?.stop();
    this.ringer = null;
    const local = await capture(view.call.video);
    if (this.call !== view || view.call.state !== "ringing") return stopTracks(local);
    view.local = local;
    view.cameraOn = view.call.video && (local?.getVideoTracks().length ?? 0) > 0;
    this.changed();
    try {
      await view.call.accept(local);
      view.conv = chat.open(view.call.conversationId);
    } catch (err) {
      console.warn("edge-chat: could not answer the call", err);
      view.call.hangup();
    }
    this.changed();
  }

  declineCall(): void {
    const view = this.call;
    if (!view || view.call.state !== "ringing") return;
    const chat = this.chat;
    const id = view.call.conversationId;
    view.call.decline();
    // The SDK opens the conversation socket to say it; let it out, then close a socket nobody looks at.
    if (chat && id !== this.openId) {
      const conv = chat.open(id);
      void conv.ready().then(
        () => setTimeout(() => id !== this.openId && this.chat === chat && conv.close(), 2_000),
        () => undefined,
      );
    }
  }

  hangupCall(): void {
    this.call?.call.hangup();
  }

  toggleMute(): void {
    const view = this.call;
    if (!view) return;
    view.muted = !view.muted;
    view.call.setMuted(view.muted);
    this.changed();
  }

  toggleCamera(): void {
    const view = this.call;
    if (!view) return;
    view.cameraOn = !view.cameraOn;
    view.call.setCamera(view.cameraOn);
    this.changed();
  }

  private onIncomingCall(call: Call): void {
    if (this.callBusy) {
      call.decline(); // busy: one call at a time
      return;
    }
    this.track(call, null);
    if (call.fromUserId) void this.user(call.fromUserId);
    this.ringer = startRinger();
    const t = setTimeout(() => {
      if (this.call?.call === call && call.state === "ringing") call.end("missed");
    }, RING_FALLBACK_MS);
    call.once("ended", () => clearTimeout(t));
    this.changed();
  }

  private track(call: Call, local: MediaStream | null): CallView {
    const view: CallView = {
      call,
      local,
      remote: null,
      remoteTracks: 0,
      muted: false,
      cameraOn: call.video && (local?.getVideoTracks().length ?? 0) > 0,
      connectedAt: null,
      answering: false,
      conv: null,
      off: () => undefined,
    };
    const offs = [
      call.on("state", (s) => {
        if (s === "connected" && view.connectedAt === null) view.connectedAt = Date.now();
        this.changed();
      }),
      call.on("stream", (remote) => {
        view.remote = remote;
        view.remoteTracks++;
        this.changed();
      }),
      call.on("ended", ({ reason }) => this.callEnded(view, reason)),
    ];
    view.off = () => offs.forEach((off) => off());
    this.call = view;
    this.changed();
    return view;
  }

  private callEnded(view: CallView, reason: CallEndReason): void {
    if (this.call !== view) return;
    const { call } = view;
    const word =
      reason === "declined" ? (call.direction === "outgoing" ? "Call declined" : null)
      : reason === "missed" ? (call.direction === "outgoing" ? "No answer" : "Missed call")
      : reason === "answered_elsewhere" ? "Answered on another device"
      : reason === "failed" ? "Call failed"
      : view.connectedAt !== null || call.direction === "outgoing" ? "Call ended"
      : "Missed call";
    this.dropCall(view);
    if (word) this.notice(word);
  }

  /** Forgets a call: capture stopped, its socket closed unless the conversation is on screen. */
  private dropCall(view: CallView): void {
    view.off();
    stopTracks(view.local);
    this.ringer?.stop();
    this.ringer = null;
    if (this.call === view) this.call = null;
    if (view.conv && view.conv !== this.openConv) view.conv.close();
    this.changed();
  }

  /** A short word at the bottom of the screen for a few seconds. */
  notice(word: string): void {
    this.callNotice = word;
    this.changed();
    this.later(3_000, () => {
      if (this.callNotice === word) {
        this.callNotice = null;
        this.changed();
      }
    });
  }
}

/** The camera and microphone (or only the microphone, or nothing when both are refused). */
async function capture(video: boolean): Promise<MediaStream | null> {
  const media = typeof navigator !== "undefined" ? navigator.mediaDevices : undefined;
  if (!media?.getUserMedia) return null;
  try {
    return await media.getUserMedia({ audio: true, video });
  } catch (err) {
    console.warn("edge-chat: no camera or microphone", err);
  }
  if (video) {
    try {
      return await media.getUserMedia({ audio: true });
    } catch {
      // no microphone either
    }
  }
  return null;
}

function stopTracks(stream: MediaStream | null): void {
  for (const t of stream?.getTracks() ?? []) t.stop();
}

interface Ringer {
  stop(): void;
}

/** A soft two-tone ring, repeated while an incoming call rings (silent where audio may not start). */
function startRinger(): Ringer {
  const Ctx = typeof window !== "undefined" ? (window.AudioContext ?? (window as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext) : undefined;
  if (!Ctx) return { stop() {} };
  let ctx: AudioContext;
  try {
    ctx = new Ctx();
  } catch {
    return { stop() {} };
  }
  const ring = () => {
    if (ctx.state !== "running") return void ctx.resume().catch(() => undefined);
    const t = ctx.currentTime;
    for (const [start, freq] of [[0, 440], [0.4, 480]] as const) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t + start);
      gain.gain.exponentialRampToValueAtTime(0.08, t + start + 0.05);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + start + 0.38);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t + start);
      osc.stop(t + start + 0.4);
    }
    navigator.vibrate?.([300, 100, 300]);
  };
  ring();
  const timer = setInterval(ring, 2_500);
  return {
    stop() {
      clearInterval(timer);
      void ctx.close().catch(() => undefined);
    },
  };
}

/** Messages that count as unread (CONTRACT.md section 5: server kinds never do). */
function counts(m: ChatMessage): boolean {
  return m.kind === "text" || m.kind === "media" || m.kind === "encrypted";
}

export function normalizeHandle(h: string): string {
  return h.trim().replace(/^@/, "").toLowerCase();
}

function deviceName(): string {
  const ua = typeof navigator !== "undefined" ? navigator.userAgent : "";
  const browser = /Firefox\//.test(ua) ? "Firefox" : /Edg\//.test(ua) ? "Edge" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
  return `${browser}${os ? ` on ${os}` : ""}`;
}
