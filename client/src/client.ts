/**
 * ChatClient: one signed-in device. It keeps one device socket open (the ordered stream
 * of everything addressed to the user), hands out each message once and in seq order,
 * resumes from the cursor stored with the state it produced, and sends through an outbox
 * that survives reconnects and restarts. CONTRACT.md section 16 is its promised surface.
 */
import type { BackoffOptions } from "./backoff";
import { isMlsKind, mlsCodec, plainCodec, type ConversationCodec } from "./codec";
import { Call, type CallFrame } from "./calls";
import { OpenConversation } from "./conversation";
import { Emitter } from "./emitter";
import { asChatError, ChatError } from "./errors";
import { Http, type FetchLike } from "./http";
import { MlsLayer } from "./mls/layer";
import { encodeMediaContent, fetchMedia, mediaPath, openMedia, sealMedia, uploadMedia, type MediaData, type SealedMediaContent } from "./media";
import { Outbox } from "./outbox";
import { BlocksApi, PrivacyApi } from "./privacy";
import { CLOSE_UNAUTHORIZED, ReconnectingSocket, type ConnectionState, type WebSocketLike } from "./socket";
import { SocketTickets } from "./tickets";
import { MemoryStorage, type ChatStorage } from "./storage";
import { SyncState } from "./sync";
import type {
  ChatEvents,
  ChatMessage,
  Conversation,
  ConversationSummary,
  Me,
  Message,
  MessageStatus,
  OutboxEntry,
  Presence,
  Receipt,
  User,
} from "./types";

export const SESSION_KEY = "session";

export interface Session {
  user_id: string;
  device_id: string;
  token: string;
  handle: string;
  /** The device socket's position when the device was made (servers that send it): the first connect's `since`. */
  cursor?: string;
}

export interface ClientOptions {
  baseUrl: string;
  /** Where the session, cursor and outbox live (default: memory, gone with the process). */
  storage?: ChatStorage;
  fetch?: FetchLike;
  WebSocket?: WebSocketLike;
  /** Reconnect timing (defaults: base 500 ms, cap 30 s, reset after 5 s connected). */
  backoff?: BackoffOptions;
  /** Ping an idle socket this often (25 s); a ping unanswered for `pongTimeoutMs` (10 s) means dead. */
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** An opening handshake not done within this long is abandoned and retried (10 s). */
  connectTimeoutMs?: number;
  /** For calls outside browsers (a WebRTC implementation for Node, say). */
  RTCPeerConnection?: typeof RTCPeerConnection;
  /** Post `delivered` markers for messages this device receives (default true). */
  autoDelivered?: boolean;
}

export interface RegisterOptions extends ClientOptions {
  handle: string;
  password: string;
  displayName?: string;
}

export interface LoginOptions extends ClientOptions {
  handle: string;
  password: string;
  deviceName?: string;
}

export interface CreateOptions {
  /**
   * End-to-end encrypted (MLS, CONTRACT.md section 10): the conversation is created with
   * `encryption: "mls"` and this device adds every member's devices to its group.
   * The default is `true` (CONTRACT.md section 16); `false` makes a plain conversation.
   */
  encrypted?: boolean;
}

export interface HistoryOptions {
  beforeSeq?: number;
  afterSeq?: number;
  limit?: number;
}

const DELIVERED_DEBOUNCE_MS = 200;

export class ChatClient extends Emitter<ChatEvents> {
  readonly userId: string;
  readonly deviceId: string;
  readonly handle: string;
  private token: string;
  private readonly http: Http;
  /** Section 17: `get()`, `set({ last_seen?, add_to_groups? })`. */
  readonly privacy: PrivacyApi;
  /** Section 17: `list()`, `add(userId)`, `remove(userId)`. */
  readonly blocks: BlocksApi;
  private readonly storage: ChatStorage;
  private readonly device: ReconnectingSocket;
  private readonly outbox: Outbox;
  private readonly open_ = new Map<string, OpenConversation>();
  private readonly deliveredTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly deliveredUpTo = new Map<string, number>();
  private readonly codecs = new Map<string, ConversationCodec>();
  /** Conversations whose `removed` was announced, so the socket's 4403 and the stream's event make one. */
  private readonly removedSent = new Set<string>();
  private sync!: SyncState;
  private mls!: MlsLayer;
  private mlsCodec_!: ConversationCodec;
  private closed = false;
  private failed = false;

  // ---- construction ----------------------------------------------------------

  static register(options: RegisterOptions): Promise<ChatClient> {
    const extra: Record<string, string> = options.displayName !== undefined ? { display_name: options.displayName } : {};
    return ChatClient.signIn("/v1/auth/register", options, extra);
  }

  static login(options: LoginOptions): Promise<ChatClient> {
    const extra: Record<string, string> = options.deviceName !== undefined ? { device_name: options.deviceName } : {};
    return ChatClient.signIn("/v1/auth/login", options, extra);
  }

  private static async signIn(path: string, options: ClientOptions & { handle: string; password: string }, extra: Record<string, string>): Promise<ChatClient> {
    const http = new Http({ baseUrl: options.baseUrl, fetch: options.fetch });
    const session = await http.request<Omit<Session, "handle">>("POST", path, { handle: options.handle, password: options.password, ...extra });
    return ChatClient.start(options, { ...session, handle: options.handle, cursor: await ChatClient.firstCursor(options, session.token) });
  }

  /** Where a new device's stream starts (before its key packages exist, so no welcome can precede it). */
  private static async firstCursor(options: ClientOptions, token: string): Promise<string | undefined> {
    const http = new Http({ baseUrl: options.baseUrl, fetch: options.fetch, token: () => token });
    try {
      return (await http.request<{ cursor: string }>("GET", "/v1/sync/cursor")).cursor;
    } catch (err) {
      if (err instanceof ChatError && (err.status === 404 || err.status === 405)) return undefined; // an older server
      throw err;
    }
  }

  /** The session stored by an earlier register/login with the same storage, or null. */
  static async restore(options: ClientOptions): Promise<ChatClient | null> {
    const storage = options.storage ?? new MemoryStorage();
    const session = await storage.read<Session>(SESSION_KEY);
    if (!session) return null;
    return ChatClient.start({ ...options, storage }, session);
  }

  private static async start(options: ClientOptions, session: Session): Promise<ChatClient> {
    const storage = options.storage ?? new MemoryStorage();
    await storage.write({ [SESSION_KEY]: session });
    const client = new ChatClient(options, storage, session);
    client.sync = await SyncState.load(storage, session.user_id);
    // A device that never connected starts from its own beginning, so that nothing made for
    // it in between (an MLS welcome above all) is missed; without a cursor it would get nothing.
    if (client.sync.cursor === null && session.cursor) client.sync.setCursor(session.cursor);
    client.mls = await MlsLayer.load(storage, { userId: session.user_id, deviceId: session.device_id }, {
      request: (method, path, body, query) => client.http.request(method, path, body, query),
      lastSeq: (conversationId) => client.sync.lastSeq(conversationId),
      error: (err) => client.emit("error", err),
    });
    client.mlsCodec_ = mlsCodec(client.mls);
    // This device's key packages: a first batch at sign-in, else whatever is left to upload.
    await client.mls.start();
    await client.outbox.load();
    client.outbox.kick();
    return client;
  }

  private constructor(
    private readonly options: ClientOptions,
    storage: ChatStorage,
    session: Session,
  ) {
    super();
    this.storage = storage;
    this.userId = session.user_id;
    this.deviceId = session.device_id;
    this.handle = session.handle;
    this.token = session.token;
    this.http = new Http({ baseUrl: options.baseUrl, fetch: options.fetch, token: () => this.token });
    this.privacy = new PrivacyApi(this.http);
    this.blocks = new BlocksApi(this.http);
    const deviceTickets = new SocketTickets(this.http);
    this.device = new ReconnectingSocket({
      url: () => deviceTickets.url("/v1/sync", { since: this.sync.cursor ?? undefined }, this.token),
      WebSocket: options.WebSocket,
      backoff: options.backoff,
      pingIntervalMs: options.pingIntervalMs,
      pongTimeoutMs: options.pongTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs,
      onFrame: (frame) => this.onDeviceEvent(frame as ChatEvents["event"]),
      // The replay is sent before anything else: the first pong comes after all of it.
      onOpen: (socket) => socket.ping(),
      onState: (state) => this.onState(state),
      onClose: (code) => (code === CLOSE_UNAUTHORIZED ? "stop" : "retry"),
      onRefused: () => this.checkToken(),
    });
    this.outbox = new Outbox(storage, {
      send: (entry) => this.postEntry(entry),
      acked: async (entry, message) => {
        const decoded = await this.decode(message);
        this.emit("status", { conversation_id: entry.conversation_id, client_message_id: entry.client_message_id, status: "sent", message: decoded });
      },
      failed: (entry, error) => this.emit("status", { conversation_id: entry.conversation_id, client_message_id: entry.client_message_id, status: "failed", error }),
      changed: (entries) => this.emit("outbox", entries),
      canSend: () => !this.closed && !this.failed,
    });
    globalThis.addEventListener?.("online", this.onOnline);
  }

  /**
   * Browsers report a network that came back; sockets that looked open through the outage
   * may be dead, and the outbox may be waiting out a long backoff: check both at once.
   */
  private readonly onOnline = () => {
    this.device.probe();
    for (const conv of this.open_.values()) conv.probe();
    this.outbox.kick();
  };

  get state(): ConnectionState {
    return this.failed ? "failed" : this.device.state;
  }

  /** The current token (for the app's own requests); `setToken` replaces it for every later request and reconnect. */
  getToken(): string {
    return this.token;
  }

  async setToken(token: string): Promise<void> {
    this.token = token;
    this.failed = false;
    await this.storage.write({ [SESSION_KEY]: { user_id: this.userId, device_id: this.deviceId, token, handle: this.handle, cursor: this.sync.cursor ?? undefined } satisfies Session });
    this.outbox.kick();
  }

  /** Opens the device socket; resolves once it is open and the replay since the stored cursor is applied. */
  async connect(): Promise<void> {
    if (this.closed) throw new ChatError("closed", "this client is closed");
    try {
      await this.device.start();
    } catch {
      throw new ChatError("unauthorized", "the device socket was refused (bad, expired or revoked token)", 401);
    }
    await this.joinMissingGroups();
  }

  /**
   * The replay has delivered every welcome made for this device; an encrypted conversation
   * it still has no group for was made before this device existed: it joins by external
   * commit (failures are reported as `error` events, the connection stays).
   */
  private async joinMissingGroups(): Promise<void> {
    let cursor: string | undefined;
    do {
      let page: { conversations: (ConversationSummary & { encryption?: string })[]; next_cursor: string | null };
      try {
        page = await this.http.request("GET", "/v1/conversations", undefined, { limit: 100, cursor });
      } catch (err) {
        this.emit("error", asChatError(err));
        return;
      }
      for (const c of page.conversations) {
        if (c.encryption !== "mls" || (await this.mls.hasGroup(c.conversation_id))) continue;
        try {
          // The replay is applied: a welcome for this device would have come with it.
          await this.mls.joinExternally(c.conversation_id, { resync: true });
        } catch (err) {
          this.emit("error", asChatError(err));
        }
      }
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** Stops every socket and retry; the outbox stays stored for the next client on this storage. */
  async close(): Promise<void> {
    this.closed = true;
    this.outbox.close();
    for (const call of [...this.activeCalls.values()]) call.hangup();
    for (const conv of [...this.open_.values()]) conv.close();
    for (const timer of this.deliveredTimers.values()) clearTimeout(timer);
    this.device.stop();
    globalThis.removeEventListener?.("online", this.onOnline);
    this.clear();
  }

  /** Revokes this device on the server and forgets the stored session, cursor and outbox. */
  async logout(): Promise<void> {
    try {
      await this.http.request("DELETE", `/v1/devices/${encodeURIComponent(this.deviceId)}`);
    } finally {
      await this.close();
      await this.storage.write({ [SESSION_KEY]: undefined, sync: undefined, outbox: undefined });
    }
  }

  /** Drops the device socket as a network cut would (tests, or an app that knows the network changed). */
  reconnect(): void {
    this.device.drop();
  }

  // ---- accounts and users ----------------------------------------------------

  me(): Promise<Me> {
    return this.http.request("GET", "/v1/me");
  }

  revokeDevice(deviceId: string): Promise<void> {
    return this.http.request("DELETE", `/v1/devices/${encodeURIComponent(deviceId)}`);
  }

  getUser(userId: string): Promise<User> {
    return this.http.request("GET", `/v1/users/${encodeURIComponent(userId)}`);
  }

  async findUser(handle: string): Promise<User | null> {
    try {
      return await this.http.request<User>("GET", "/v1/users", undefined, { handle });
    } catch (err) {
      if (err instanceof ChatError && err.status === 404) return null;
      throw err;
    }
  }

  presence(userId: string): Promise<Presence> {
    return this.http.request("GET", `/v1/users/${encodeURIComponent(userId)}/presence`);
  }

  // ---- conversations ---------------------------------------------------------

  async createDirect(userId: string, options: CreateOptions = {}): Promise<Conversation> {
    const body = { type: "direct", peer: userId, ...(options.encrypted ?? true ? { encryption: "mls" } : {}) };
    return this.created(body);
  }

  async createGroup(name: string, userIds: string[], options: CreateOptions = {}): Promise<Conversation> {
    const body = { type: "group", name, members: userIds, ...(options.encrypted ?? true ? { encryption: "mls" } : {}) };
    return this.created(body);
  }

  /**
   * A new encrypted conversation gets its MLS group, with every member's devices added,
   * before this resolves. An existing direct one (200) keeps the encryption it was made
   * with; if it is encrypted and this device is not in its group yet, it joins.
   */
  private async created(body: Record<string, unknown>): Promise<Conversation> {
    const answer = { status: 0 };
    const conversation = await this.http.request<Conversation>("POST", "/v1/conversations", body, undefined, answer);
    this.remember(conversation);
    this.noteEncryption(conversation);
    if (isMls(conversation) && answer.status === 201) {
      const members = new Set([...conversation.members.map((m) => m.user_id), this.userId]);
      await this.mls.createGroup(conversation.conversation_id, [...members]);
    } else if (isMls(conversation) && !(await this.mls.hasGroup(conversation.conversation_id))) {
      await this.mls.joinExternally(conversation.conversation_id);
    }
    return conversation;
  }

  async getConversation(conversationId: string): Promise<Conversation> {
    const conversation = this.remember(await this.http.request<Conversation>("GET", `/v1/conversations/${encodeURIComponent(conversationId)}`));
    this.noteEncryption(conversation);
    return conversation;
  }

  async listConversations(options: { limit?: number; cursor?: string } = {}): Promise<{ conversations: ConversationSummary[]; next_cursor: string | null }> {
    const page = await this.http.request<{ conversations: ConversationSummary[]; next_cursor: string | null }>("GET", "/v1/conversations", undefined, {
      limit: options.limit,
      cursor: options.cursor,
    });
    for (const c of page.conversations) {
      this.sync.setMembers(c.conversation_id, c.members.map((m) => m.user_id));
      this.noteEncryption(c as Conversation);
      if (c.last_message) page.conversations[page.conversations.indexOf(c)] = { ...c, last_message: (await this.decode(c.last_message)) as Message };
    }
    return page;
  }

  /** In an encrypted conversation, this device then commits the new members' devices into the group. */
  async addMembers(conversationId: string, userIds: string[]): Promise<Conversation> {
    const conversation = this.remember(
      await this.http.request<Conversation>("POST", `/v1/conversations/${encodeURIComponent(conversationId)}/members`, { user_ids: userIds }),
    );
    this.noteEncryption(conversation);
    if (isMls(conversation) && (await this.mls.hasGroup(conversationId))) await this.mls.addUsers(conversationId, userIds);
    return conversation;
  }

  /** In an encrypted conversation, this device then commits the removal of every leaf of the user. */
  async removeMember(conversationId: string, userId: string): Promise<void> {
    await this.http.request("DELETE", `/v1/conversations/${encodeURIComponent(conversationId)}/members/${encodeURIComponent(userId)}`);
    if (userId !== this.userId && (await this.mls.hasGroup(conversationId))) await this.mls.removeUsers(conversationId, [userId]);
  }

  leave(conversationId: string): Promise<void> {
    return this.removeMember(conversationId, this.userId);
  }

  /** Opens the conversation socket: typing, presence and receipts while it is on screen. */
  open(conversationId: string): OpenConversation {
    const existing = this.open_.get(conversationId);
    if (existing) return existing;
    const tickets = new SocketTickets(this.http);
    const conv = new OpenConversation(conversationId, {
      url: () => tickets.url(`/v1/conversations/${encodeURIComponent(conversationId)}/ws`, {}, this.token),
      WebSocket: this.options.WebSocket,
      backoff: this.options.backoff,
      pingIntervalMs: this.options.pingIntervalMs,
      pongTimeoutMs: this.options.pongTimeoutMs,
      connectTimeoutMs: this.options.connectTimeoutMs,
      forward: (type, payload) => {
        if (type === "receipt") return this.applyReceipt(payload as Receipt);
        if (type === "call") return this.onCallFrame(payload as CallFrame);
        if (type === "removed") return this.announceRemoved(conversationId);
        if (type === "typing" || type === "presence") this.emit(type, payload as never);
      },
      onClosed: () => this.open_.delete(conversationId),
      onRefused: async () => {
        try {
          await this.getConversation(conversationId);
          return "retry";
        } catch (err) {
          if (!(err instanceof ChatError)) return "retry";
          if (err.status === 403 || err.status === 404) return "removed";
          return err.status === 401 ? "stop" : "retry";
        }
      },
    });
    this.open_.set(conversationId, conv);
    return conv;
  }

  // ---- messages --------------------------------------------------------------

  /**
   * Queues a text message and resolves with it once the server has durably stored it.
   * The send is in the outbox before this returns a pending promise: it is retried with
   * the same client_message_id across reconnects, and after a restart by the next client
   * on the same storage.
   */
  async sendText(conversationId: string, text: string): Promise<ChatMessage> {
    const entry: OutboxEntry = {
      client_message_id: newClientMessageId(),
      conversation_id: conversationId,
      kind: "text",
      content: "",
      text,
      encoded: false,
      created_at: Date.now(),
      attempts: 0,
    };
    // In the outbox (and so in `pending()`) before the first await; stored before it is tried.
    const acked = this.outbox.add(entry);
    this.emit("status", { conversation_id: conversationId, client_message_id: entry.client_message_id, status: "pending" });
    return this.decode(await acked);
  }

  /**
   * Section 13. Replaces the text of one's own message (within the server's edit window);
   * resolves with the message as it now is. Everyone, this client too, gets `updated`.
   */
  async editMessage(conversationId: string, seq: number, text: string): Promise<ChatMessage> {
    const codec = (await this.isEncrypted(conversationId)) ? this.mlsCodec_ : plainCodec;
    const encoded = await codec.encodeText(conversationId, text, newClientMessageId());
    // Known here before the server's message_updated can come back on the stream.
    const before = encoded.kind === "encrypted" ? await this.mls.rememberEdit(conversationId, seq, text) : undefined;
    try {
      const message = await this.http.request<Message>("PATCH", `${messagePath(conversationId, seq)}`, { content: encoded.content });
      return await this.decode(message);
    } catch (err) {
      if (encoded.kind === "encrypted") await this.mls.rememberEdit(conversationId, seq, before);
      throw err;
    }
  }

  /** Deletes a message (one's own, or any as a group admin): it stays as `{deleted: true, content: ""}`. */
  async deleteMessage(conversationId: string, seq: number): Promise<void> {
    await this.http.request("DELETE", messagePath(conversationId, seq));
  }

  /** Sets this user's one reaction to a message (replacing theirs), or removes it with null. */
  async react(conversationId: string, seq: number, reaction: string | null): Promise<void> {
    if (reaction === null) await this.http.request("DELETE", `${messagePath(conversationId, seq)}/reaction`);
    else await this.http.request("PUT", `${messagePath(conversationId, seq)}/reaction`, { reaction });
  }

  /**
   * Uploads a file (in one request up to 32 MiB, in parts beyond, up to the server's 100 MiB)
   * and then sends a `kind:"media"` message naming it, through the outbox like `sendText`
   * (same client_message_id on every retry). The upload itself is retried within this call
   * but not across restarts: the SDK does not keep the bytes. `content` is the JSON
   * `{"name"?,"caption"?,"type"?}`, read back as `message.media`.
   */
  async sendMedia(conversationId: string, data: MediaData, options: { contentType?: string; name?: string; caption?: string } = {}): Promise<ChatMessage> {
    const contentType = options.contentType ?? (data instanceof Blob && data.type ? data.type : "application/octet-stream");
    const encrypted = await this.isEncrypted(conversationId);
    const details = { name: options.name, caption: options.caption, type: contentType };
    // Encrypted: the server stores ciphertext only; the key goes inside the PrivateMessage.
    const sealed = encrypted ? await sealMedia(data, details) : null;
    const media = sealed
      ? await uploadMedia(this.http, conversationId, sealed.sealed, "application/octet-stream")
      : await uploadMedia(this.http, conversationId, data, contentType);
    const entry: OutboxEntry = {
      client_message_id: newClientMessageId(),
      conversation_id: conversationId,
      kind: sealed ? "encrypted" : "media",
      content: sealed ? "" : encodeMediaContent({ ...details, type: media.content_type }),
      // What a pending row shows until the message is stored.
      ...(options.caption || options.name ? { text: options.caption || options.name } : {}),
      media_id: media.media_id,
      ...(sealed ? { sealed: sealed.media } : {}),
      encoded: !sealed,
      created_at: Date.now(),
      attempts: 0,
    };
    const acked = this.outbox.add(entry);
    this.emit("status", { conversation_id: conversationId, client_message_id: entry.client_message_id, status: "pending" });
    return this.decode(await acked);
  }

  /** A media's bytes as a Blob of its type; members only. */
  async fetchMedia(conversationId: string, mediaId: string, media?: ChatMessage["media"]): Promise<Blob> {
    const blob = await fetchMedia(this.http, conversationId, mediaId);
    // An encrypted conversation's file: decrypted with the key its message carried.
    return media?.key && media.iv && media.sha256 ? openMedia(blob, media as SealedMediaContent) : blob;
  }

  /** A media's URL; it needs the `authorization` header, so fetch it (`fetchMedia`) rather than put it in `<img src>`. */
  mediaUrl(conversationId: string, mediaId: string): string {
    return this.http.baseUrl + mediaPath(conversationId, mediaId);
  }

  /** Sends not yet acknowledged, oldest first. */
  pending(conversationId?: string): OutboxEntry[] {
    return this.outbox.pending(conversationId);
  }

  /** Messages in ascending seq order, decrypted; no option: the newest page. */
  async history(conversationId: string, options: HistoryOptions = {}): Promise<ChatMessage[]> {
    let { beforeSeq, afterSeq } = options;
    const limit = options.limit ?? 50;
    for (;;) {
      const page = await this.http.request<{ messages: Message[] }>("GET", `/v1/conversations/${encodeURIComponent(conversationId)}/messages`, undefined, {
        before_seq: beforeSeq,
        after_seq: afterSeq,
        limit: options.limit,
      });
      const out: ChatMessage[] = [];
      for (const m of page.messages) if (!isProtocolKind(m.kind)) out.push(await this.decode(m));
      // A page of nothing but commits is not the end of the history: read on in the same direction.
      if (out.length > 0 || page.messages.length < limit) return out;
      if (afterSeq !== undefined) afterSeq = page.messages.at(-1)!.seq;
      else beforeSeq = page.messages[0]!.seq;
    }
  }

  async markRead(conversationId: string, upToSeq: number): Promise<void> {
    await this.http.request("POST", `/v1/conversations/${encodeURIComponent(conversationId)}/read`, { up_to_seq: upToSeq });
    this.applyReceipt({ conversation_id: conversationId, user_id: this.userId, kind: "read", up_to_seq: upToSeq });
  }

  async markDelivered(conversationId: string, upToSeq: number): Promise<void> {
    await this.http.request("POST", `/v1/conversations/${encodeURIComponent(conversationId)}/delivered`, { up_to_seq: upToSeq });
  }

  /** The status of a message: `pending` in the outbox, else from the other members' markers. */
  statusOf(message: Pick<ChatMessage, "conversation_id" | "client_message_id"> & { seq?: number }): MessageStatus {
    if (message.seq === undefined) return "pending";
    return this.sync.statusOf(message.conversation_id, message.seq, this.userId);
  }

  /** Every member's markers in a conversation, as this client has seen them. */
  receipts(conversationId: string): Record<string, { delivered: number; read: number }> {
    return this.sync.markers(conversationId);
  }

  // ---- push ------------------------------------------------------------------

  readonly push = {
    vapidPublicKey: async (): Promise<string> => (await this.http.request<{ key: string }>("GET", "/v1/push/vapid-public-key")).key,
    subscribe: (subscription: { endpoint: string; keys: { p256dh: string; auth: string } } | PushSubscriptionJSON): Promise<void> =>
      this.http.request("POST", "/v1/push/subscriptions", subscription),
    unsubscribe: (): Promise<void> => this.http.request("DELETE", "/v1/push/subscriptions"),
  };

  private readonly activeCalls = new Map<string, Call>();

  readonly calls = {
    /** ICE servers for an RTCPeerConnection: short-lived TURN credentials, or the server's STUN list. */
    iceServers: (): Promise<{ ice_servers: RTCIceServer[]; ttl: number }> => this.http.request("GET", "/v1/calls/ice-servers"),
    /**
     * Rings the conversation's other members. `stream` is the app's own capture (or null);
     * media starts once a device accepts; `call.on("stream")` hands over the remote media.
     */
    start: async (conversationId: string, options: { video?: boolean; stream?: MediaStream | null } = {}): Promise<Call> => {
      const call = this.newCall(`call_${globalThis.crypto.randomUUID()}`, conversationId, "outgoing", options.video ?? false, null, null);
      await call.ring(options.stream ?? null);
      return call;
    },
    /** Calls in progress on this device. */
    active: (): Call[] => [...this.activeCalls.values()],
  };

  private newCall(callId: string, conversationId: string, direction: "outgoing" | "incoming", video: boolean, peer: string | null, from: string | null): Call {
    const call = new Call(
      {
        deviceId: this.deviceId,
        open: (id) => this.open(id),
        iceServers: async () => (await this.calls.iceServers()).ice_servers,
        RTCPeerConnection: this.options.RTCPeerConnection,
      },
      callId,
      conversationId,
      direction,
      video,
      peer,
      from,
    );
    this.activeCalls.set(callId, call);
    call.on("ended", () => this.activeCalls.delete(callId));
    return call;
  }

  /** A call frame from either socket: to its call, or a ring that starts an incoming one. */
  private onCallFrame(frame: CallFrame): void {
    if (frame.from_device_id === this.deviceId) return;
    const existing = this.activeCalls.get(frame.call_id);
    if (existing) return void existing.onFrame(frame).catch((err) => this.emit("error", err));
    if (frame.action !== "ring" || !frame.conversation_id || frame.from_user_id === this.userId) return;
    const video = Boolean((frame.payload as { video?: unknown } | undefined)?.video);
    const call = this.newCall(frame.call_id, frame.conversation_id, "incoming", video, frame.from_device_id ?? null, frame.from_user_id ?? null);
    this.emit("call", call);
  }

  /**
   * An encrypted conversation's key fingerprints, for people to compare out of band: one
   * per device (its signature key in this group) and one code for the whole group, which
   * every member's device shows alike. Null for a plain conversation or before this device joined.
   */
  fingerprints(conversationId: string): Promise<{ group: string; devices: { user_id: string; device_id: string; fingerprint: string }[] } | null> {
    return this.mls.fingerprints(conversationId);
  }

  /** Any endpoint, with this device's token: for what the SDK does not wrap yet. */
  request<T>(method: string, path: string, body?: unknown, query?: Record<string, string | number | undefined>): Promise<T> {
    return this.http.request<T>(method, path, body, query);
  }

  // ---- internals -------------------------------------------------------------

  private async postEntry(entry: OutboxEntry): Promise<Message> {
    // Encoded at its first attempt, then stored: retries resend the very same bytes.
    if (!entry.encoded) {
      const encrypted = await this.isEncrypted(entry.conversation_id);
      // Encrypted, and no welcome for this device: without a stream none can come; with one it
      // may be on its way, so the first tries wait for it before the device joins by itself.
      if (encrypted && !(await this.mls.hasGroup(entry.conversation_id)) && (this.device.state !== "connected" || entry.attempts >= 3)) {
        await this.mls.joinExternally(entry.conversation_id, { resync: true });
      }
      const codec = encrypted ? this.mlsCodec_ : plainCodec;
      const encoded = entry.sealed
        ? await this.mls.encodeMedia(entry.conversation_id, entry.sealed, entry.client_message_id)
        : await codec.encodeText(entry.conversation_id, entry.text ?? "", entry.client_message_id);
      this.outbox.update(entry, { kind: encoded.kind, content: encoded.content, encoded: true });
    }
    try {
      return await this.http.request<Message>("POST", `/v1/conversations/${encodeURIComponent(entry.conversation_id)}/messages`, {
        client_message_id: entry.client_message_id,
        kind: entry.kind,
        content: entry.content,
        ...(entry.media_id ? { media_id: entry.media_id } : {}),
      });
    } catch (err) {
      throw await this.staleEpoch(entry, err);
    }
  }

  /**
   * A PrivateMessage made before a commit the sender had not applied yet is refused (409 with
   * the group's epoch): apply what was committed, encrypt again, and let the outbox resend.
   */
  private async staleEpoch(entry: OutboxEntry, err: unknown): Promise<unknown> {
    const epoch = err instanceof ChatError && err.status === 409 ? (err.body as { epoch?: unknown } | undefined)?.epoch : undefined;
    if (entry.kind !== "encrypted" || typeof epoch !== "number") return err;
    const reached = await this.mls.followTo(entry.conversation_id);
    if (reached === null || reached < epoch) return new ChatError("conflict", `cannot follow the MLS group of ${entry.conversation_id} to epoch ${epoch}`, 409);
    this.outbox.update(entry, { encoded: false });
    return new ChatError("network", `encrypting again in epoch ${reached}`);
  }

  /** Why an upgrade was refused, as far as it matters: a bad token stops retrying. */
  private async checkToken(): Promise<"retry" | "stop"> {
    try {
      await this.http.request("GET", "/v1/me");
      return "retry";
    } catch (err) {
      return err instanceof ChatError && err.status === 401 ? "stop" : "retry";
    }
  }

  private onState(state: ConnectionState): void {
    if (state === "failed") this.failed = true;
    if (state === "connected") this.outbox.kick();
    this.emit("state", this.state);
  }

  private remember(conversation: Conversation): Conversation {
    this.sync.setMembers(conversation.conversation_id, conversation.members.map((m) => m.user_id));
    return conversation;
  }

  /**
   * Whether sends into the conversation go through MLS. Not told yet (the welcome or its event
   * may still be on the way), it asks the server, so that nothing is sent in the clear into an
   * encrypted conversation.
   */
  private async isEncrypted(conversationId: string): Promise<boolean> {
    if (await this.mls.hasGroup(conversationId)) return true;
    if (!this.codecs.has(conversationId)) await this.getConversation(conversationId);
    return this.codecFor(conversationId) !== plainCodec;
  }

  private codecFor(conversationId: string): ConversationCodec {
    return this.codecs.get(conversationId) ?? plainCodec;
  }

  /** Marks a conversation as encrypted: its messages go through the MLS layer. */
  private noteEncryption(conversation: Conversation & { encryption?: string }): void {
    if (conversation.encryption !== undefined) this.codecs.set(conversation.conversation_id, isMls(conversation) ? this.mlsCodec_ : plainCodec);
  }

  /** `live`: from the device stream, once and in seq order (commits move the group on). */
  private decode(message: Message | ChatMessage, live = false): Promise<ChatMessage> {
    const codec = isMlsKind(message.kind) ? this.mlsCodec_ : this.codecFor(message.conversation_id);
    return codec.decode(message as ChatMessage, live);
  }

  /** One device-socket event: apply, store with its cursor, then tell the app. */
  private async onDeviceEvent(event: ChatEvents["event"]): Promise<void> {
    const toEmit: (() => void)[] = [];
    switch (event.type) {
      case "message":
        await this.applyMessage(event.message as Message, toEmit);
        break;
      case "message_updated": {
        // Section 13: the message as it now is; the app replaces what it shows for that seq.
        const changed = event.message as Message;
        const updated = changed.kind === "encrypted" ? await this.mls.decodeUpdated(changed as ChatMessage) : await this.decode(changed);
        toEmit.push(() => this.emit("updated", updated));
        break;
      }
      case "receipt": {
        const r = event as unknown as Receipt;
        if (this.sync.applyReceipt(r)) toEmit.push(() => this.emit("receipt", { conversation_id: r.conversation_id, user_id: r.user_id, kind: r.kind, up_to_seq: r.up_to_seq }));
        break;
      }
      case "conversation": {
        const conversation = event.conversation as Conversation;
        this.remember(conversation);
        this.noteEncryption(conversation);
        this.removedSent.delete(conversation.conversation_id);
        toEmit.push(() => this.emit("conversation", conversation));
        break;
      }
      case "call":
        // Ephemeral (no cursor): a ring for a device without the conversation open, or its end.
        toEmit.push(() => this.onCallFrame(event as unknown as CallFrame));
        break;
      case "mls_welcome":
        await this.mls.onWelcome(event as unknown as { conversation_id: string; epoch: number; welcome: string });
        break;
      case "key_packages_low":
        // Not awaited: the stream goes on while the packages are made and uploaded.
        void this.mls.onKeyPackagesLow(Number(event.count) || 0);
        break;
      case "removed": {
        const conversation_id = String(event.conversation_id);
        this.sync.forget(conversation_id);
        const open = this.open_.get(conversation_id);
        toEmit.push(() => (open ? open.removed() : this.announceRemoved(conversation_id)));
        break;
      }
    }
    // Ephemeral frames (a ring) carry no cursor and change no stored state.
    if (event.cursor !== undefined) {
      this.sync.setCursor(event.cursor);
      // Group states and plaintexts the event produced go in the same write as the cursor.
      await this.sync.save(this.mls.takeWrites());
    }
    this.emit("event", event);
    for (const fire of toEmit) fire();
  }

  /**
   * Hands out a message once and in seq order: one already handed out is dropped; one
   * past a gap (which the stream should never have) is preceded by the missing ones
   * fetched from history.
   */
  private async applyMessage(message: Message, toEmit: (() => void)[]): Promise<void> {
    const conv = message.conversation_id;
    const last = this.sync.lastSeq(conv);
    if (message.seq <= last) return;
    const batch: Message[] = [];
    if (last > 0 && message.seq > last + 1) batch.push(...(await this.fillGap(conv, last, message.seq)));
    batch.push(message);
    for (const m of batch) {
      const decoded = await this.decode(m, true);
      this.sync.setSeq(conv, m.seq);
      // Commits are the MLS layer's business (applied above), not a message for the app.
      if (!isProtocolKind(decoded.kind)) toEmit.push(() => this.emit("message", decoded));
    }
    if (message.sender_id !== this.userId) this.scheduleDelivered(conv, message.seq);
  }

  private async fillGap(conversationId: string, after: number, before: number): Promise<Message[]> {
    const out: Message[] = [];
    let from = after;
    try {
      while (from < before - 1) {
        const page = await this.http.request<{ messages: Message[] }>("GET", `/v1/conversations/${encodeURIComponent(conversationId)}/messages`, undefined, {
          after_seq: from,
          limit: Math.min(200, before - 1 - from),
        });
        const got = page.messages.filter((m) => m.seq < before);
        if (got.length === 0) break;
        out.push(...got);
        from = got[got.length - 1]!.seq;
      }
    } catch {
      // history is a best effort here: the stream itself goes on
    }
    return out;
  }

  private announceRemoved(conversationId: string): void {
    if (this.removedSent.has(conversationId)) return;
    this.removedSent.add(conversationId);
    this.emit("removed", { conversation_id: conversationId });
  }

  private applyReceipt(r: Receipt): void {
    if (this.sync.applyReceipt(r)) {
      void this.sync.save();
      this.emit("receipt", r);
    }
  }

  private scheduleDelivered(conversationId: string, seq: number): void {
    if (this.options.autoDelivered === false) return;
    this.deliveredUpTo.set(conversationId, Math.max(seq, this.deliveredUpTo.get(conversationId) ?? 0));
    if (this.deliveredTimers.has(conversationId)) return;
    this.deliveredTimers.set(
      conversationId,
      setTimeout(() => {
        this.deliveredTimers.delete(conversationId);
        const upTo = this.deliveredUpTo.get(conversationId) ?? 0;
        if (this.closed) return;
        // A cut connection must not lose the marker: transient failures try again.
        void this.markDelivered(conversationId, upTo).catch((err) => {
          if (err instanceof ChatError && err.transient) setTimeout(() => this.scheduleDelivered(conversationId, upTo), 1_000);
        });
      }, DELIVERED_DEBOUNCE_MS),
    );
  }
}

/** Kinds the SDK consumes itself (MLS commits) and never hands out as messages. */
const isProtocolKind = (kind: string): boolean => kind === "mls_commit";

const isMls = (conversation: Conversation & { encryption?: string }) => conversation.encryption === "mls";
const messagePath = (conversationId: string, seq: number) => `/v1/conversations/${encodeURIComponent(conversationId)}/messages/${seq}`;

/** A fresh client_message_id: random, so two devices never collide. */
function newClientMessageId(): string {
  return `c_${globalThis.crypto.randomUUID()}`;
}
