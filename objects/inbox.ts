/**
 * One Durable Object per user: the ordered log of everything addressed to the user
 * (the device socket's stream, resumable by cursor), the conversation list with last
 * messages and unread counts, and the sockets of all the user's devices.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import {
  CLOSE_UNAUTHORIZED,
  fail,
  ok,
  SERVER_MESSAGE_KINDS,
  type ConversationSummary,
  type DeviceOnlyEvent,
  type FeedEvent,
  type Message,
  type Outcome,
  type Presence,
  type PushSubscriptionBody,
  type DeviceCallFrame,
  type DeviceEvent,
  type DeviceServerFrame,
  type Wire,
  CursorParam,
} from "../protocol";
import { limits } from "../shared/config";
import { conversationStub } from "../shared/stubs";
import { eventOf, messageJson, type WireEvent } from "./wire-events";
import { IDLE_INBOX_INTERVAL_MS } from "./fanout";
import { AlarmScheduler } from "./scheduler";
import { KEY_PACKAGES_LOW, KEY_PACKAGES_SCHEMA, KeyPackageStore, type ClaimedPackage, type VerifiedKeyPackage } from "./key-packages";
import { PRESENCE_SCHEMA, PresenceTracker } from "./presence";
import { PUSH_OUTBOX_SCHEMA, PUSH_SCHEMA, PushSubscriptions, type PushJob } from "./push-subscriptions";
import { leaseTokens, RATE_LIMIT_SCHEMA, takeToken, type LeaseResult, type TakeResult } from "./rate-limit";
import { INBOX_PRIVACY_SCHEMA, applyListFlags, LISTED } from "./inbox-privacy";
import { migrate } from "./migrate";
import { answerClose, closeSocket, firstExpiry, json, liveSockets, type SocketIdentity } from "./sockets";
import { parseDeviceFrame } from "./frames";
import { SocketHost } from "./socket-host";

const INBOX_SCHEMA = [
  `CREATE TABLE log (
     cursor INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, type TEXT NOT NULL,
     seq INTEGER, sender_id TEXT, event TEXT NOT NULL, created_at INTEGER NOT NULL);
   CREATE UNIQUE INDEX log_messages ON log (conversation_id, seq) WHERE type = 'message';
   CREATE TABLE conversations (
     conversation_id TEXT PRIMARY KEY, last_feed_id INTEGER NOT NULL DEFAULT 0, snapshot TEXT,
     last_message TEXT, last_seq INTEGER NOT NULL DEFAULT 0, last_activity INTEGER NOT NULL DEFAULT 0,
     last_read_seq INTEGER NOT NULL DEFAULT 0, removed INTEGER NOT NULL DEFAULT 0);
   CREATE INDEX conversations_activity ON conversations (last_activity DESC, conversation_id DESC);
   CREATE TABLE revoked_devices (device_id TEXT PRIMARY KEY);`,
  PRESENCE_SCHEMA,
  RATE_LIMIT_SCHEMA,
  PUSH_SCHEMA,
  `ALTER TABLE conversations ADD COLUMN join_seq INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE conversations ADD COLUMN own_before_join TEXT NOT NULL DEFAULT '[]';`,
  PUSH_OUTBOX_SCHEMA,
  // Section 10: key packages, and events for one device only (device_id) in the log;
  // kind says which messages never count as unread.
  KEY_PACKAGES_SCHEMA,
  `ALTER TABLE log ADD COLUMN device_id TEXT;
   ALTER TABLE log ADD COLUMN kind TEXT;`,
  // The user's open conversation sockets, in every conversation (MAX_CONVERSATION_SOCKETS_PER_USER).
  `CREATE TABLE conversation_sockets (socket_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, opened_at INTEGER NOT NULL);`,
  // Section 13: a delete rewrites every logged event about the message, found by seq.
  `CREATE INDEX log_updates ON log (conversation_id, seq) WHERE type = 'message_updated';`,
  INBOX_PRIVACY_SCHEMA,
] as const;

const REPLAY_PAGE = 500;

interface ConversationRow extends Record<string, SqlStorageValue> {
  conversation_id: string;
  last_feed_id: number;
  snapshot: string | null;
  last_message: string | null;
  last_seq: number;
  last_activity: number;
  last_read_seq: number;
  removed: number;
  join_seq: number;
  own_before_join: string;
  earlier_hidden: number;
  request: number;
  hidden: number;
}

/** A log row as inserted: type, seq, sender_id, event, device_id, kind. */
type LogEntry = [string, number | null, string | null, string, string | null, string | null];
/** 6 bound values a row and 2 shared, within SQLite's 100 bound parameters per statement. */
const LOG_ROWS_PER_INSERT = 16;

interface LogRow extends Record<string, SqlStorageValue> {
  cursor: number;
  event: string;
  /** Set for events of one device only. */
  device_id: string | null;
}

/** What a conversation hands an inbox: events past the inbox's position, and the position they reach. */
export interface IngestBatch {
  userId: string;
  conversationId: string;
  events: WireEvent[];
  upto: number;
}

/** What an inbox answers a batch with: whether a device socket is open here to stream it to (objects/fanout.ts). */
export interface IngestAnswer {
  streaming: boolean;
}

const ListCursor = z.tuple([z.number(), z.string()]);

export class Inbox extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly limits = limits(this.env);
  private readonly host = new SocketHost<SocketIdentity, DeviceServerFrame>(this.ctx, { isRevoked: (deviceId) => this.isRevoked(deviceId) });
  /** The object's one alarm: token expiry, the presence grace period and push retries. */
  private readonly alarms = new AlarmScheduler(this.ctx.storage);
  private readonly presence: PresenceTracker;
  private readonly subscriptions: PushSubscriptions;
  private readonly keyPackages: KeyPackageStore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.presence = new PresenceTracker(ctx, env, this.alarms);
    this.subscriptions = new PushSubscriptions(ctx, env.PUSH_QUEUE, this.alarms);
    this.keyPackages = new KeyPackageStore(ctx.storage.sql, this.limits.maxKeyPackages);
    ctx.blockConcurrencyWhile(async () => migrate(this.sql, INBOX_SCHEMA));
    this.registerAlarmTasks();
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
  }

  /**
   * Applies a conversation's events, each once: whatever lies at or below the position
   * already recorded for that conversation is a repeat of an earlier delivery.
   */
  async ingest(batch: IngestBatch): Promise<IngestAnswer> {
    const appended: LogRow[] = [];
    let pushes = 0;
    let position = 0;
    this.ctx.storage.transactionSync(() => {
      position = this.feedPosition(batch.conversationId);
      const fresh = batch.events.filter((e) => e.feedId > position);
      // The list keeps the newest message only: the earlier ones of the batch need no update.
      const newest = fresh.findLastIndex((e) => e.type === "message");
      // `joined` and `list_flags` only change the list; every other event is logged.
      appended.push(...this.appendAll(batch.conversationId, fresh.filter((e) => e.type !== "joined" && e.type !== "list_flags")));
      // A batch that ends with its newest message (the usual one) updates the list entry and the
      // feed position in one statement; any other batch applies its events in order, then the position.
      const endsWithMessage = newest >= 0 && newest === fresh.length - 1;
      fresh.forEach((e, i) => {
        if (e.type !== "message" || (i === newest && !endsWithMessage)) this.applyToList(batch.userId, batch.conversationId, eventOf(e));
      });
      const jobs = this.pushJobs(batch.userId, batch.conversationId, fresh);
      this.subscriptions.stage(jobs);
      pushes = jobs.length;
      if (endsWithMessage) this.listMessageAndPosition(batch.conversationId, fresh[newest]!, batch.upto);
      else this.sql.exec("UPDATE conversations SET last_feed_id = max(last_feed_id, ?) WHERE conversation_id = ?", batch.upto, batch.conversationId);
      position = Math.max(position, batch.upto);
    });
    // Only once the transaction committed: a rolled-back batch leaves the position where it was.
    this.positions.set(batch.conversationId, position);
    const sockets = this.ctx.getWebSockets();
    for (const row of appended) this.stream(row, sockets);
    if (pushes > 0) this.ctx.waitUntil(this.subscriptions.flush());
    return { streaming: sockets.some((ws) => ws.readyState === WebSocket.OPEN) };
  }

  /** Feed positions read or written by this instance (the one writer): each batch asks. */
  private readonly positions = new Map<string, number>();

  /** How far into a conversation's feed this inbox has applied; a conversation new here starts at 0. */
  private feedPosition(conversationId: string): number {
    const known = this.positions.get(conversationId);
    if (known !== undefined) return known;
    const row = this.sql.exec<{ p: number }>("SELECT last_feed_id AS p FROM conversations WHERE conversation_id = ?", conversationId).toArray()[0];
    if (row) return row.p;
    this.sql.exec("INSERT INTO conversations (conversation_id) VALUES (?)", conversationId);
    return 0;
  }

  /** The user's conversations, most recent activity first. */
  async listConversations(
    userId: string,
    opts: { limit: number; cursor?: string },
  ): Promise<Outcome<{ conversations: ConversationSummary[]; next_cursor: string | null }>> {
    let after: [number, string] = [Number.MAX_SAFE_INTEGER, ""];
    if (opts.cursor !== undefined) {
      const parsed = ListCursor.safeParse(decodeCursor(opts.cursor));
      if (!parsed.success) return fail("invalid_request", "cursor: not a cursor this server issued");
      after = parsed.data;
    }
    const rows = this.sql
      .exec<ConversationRow>(
        `SELECT * FROM conversations WHERE ${LISTED}
           AND (last_activity < ? OR (last_activity = ? AND conversation_id < ?) OR ? = '')
         ORDER BY last_activity DESC, conversation_id DESC LIMIT ?`,
        after[0],
        after[0],
        after[1],
        after[1],
        opts.limit + 1,
      )
      .toArray();
    const page = rows.slice(0, opts.limit);
    const last = page.at(-1);
    return ok({
      conversations: page.map((row) => this.summary(userId, row)),
      next_cursor: rows.length > opts.limit && last ? encodeCursor([last.last_activity, last.conversation_id]) : null,
    });
  }

  /** Refuses the device from now on and closes its device sockets with 4401. */
  async revokeDevice(deviceId: string): Promise<void> {
    this.sql.exec("INSERT OR IGNORE INTO revoked_devices (device_id) VALUES (?)", deviceId);
    this.subscriptions.delete(deviceId);
    this.keyPackages.forget(deviceId);
    for (const ws of this.ctx.getWebSockets(`d:${deviceId}`)) closeSocket(ws, CLOSE_UNAUTHORIZED, "device revoked");
  }

  /** Registers (or replaces) the device's Web Push subscription. */
  async putPushSubscription(deviceId: string, subscription: PushSubscriptionBody): Promise<void> {
    this.subscriptions.put(deviceId, subscription);
  }

  /** Forgets the device's subscription; with `endpoint`, only if it is still that one. */
  async deletePushSubscription(deviceId: string, endpoint?: string): Promise<boolean> {
    return this.subscriptions.delete(deviceId, endpoint);
  }

  /** One send by this user, from any conversation, over HTTP or a socket: the user's one bucket. */
  async takeSendToken(): Promise<TakeResult> {
    return takeToken(this.sql, "send", this.limits.sendRatePerMinute);
  }

  /** The same bucket, taken in blocks by a conversation (objects/send-leases.ts). */
  async leaseSendTokens(want: number, giveBack: number): Promise<LeaseResult> {
    return leaseTokens(this.sql, "send", this.limits.sendRatePerMinute, want, giveBack);
  }

  /**
   * An ephemeral call frame (section 11) for this user's device sockets: no cursor, never
   * logged. A `ring` also goes as a Web Push to subscribed devices without a socket.
   */
  async callFrame(userId: string, frame: Wire<DeviceCallFrame>, exceptDeviceId: string | null): Promise<void> {
    const online = new Set<string>();
    for (const ws of this.ctx.getWebSockets()) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      const { deviceId, exp } = this.host.attachment(ws);
      online.add(deviceId);
      if (deviceId !== exceptDeviceId && exp * 1000 > Date.now()) this.host.send(ws, frame);
    }
    const parsed = JSON.parse(frame) as DeviceCallFrame;
    if (parsed.action !== "ring") return;
    const jobs = this.subscriptions.jobsFor(userId, online, { type: "call", conversation_id: parsed.conversation_id, call_id: parsed.call_id });
    if (jobs.length === 0) return;
    this.subscriptions.stage(jobs);
    await this.subscriptions.flush();
  }

  // ---- MLS key packages (section 10) -------------------------------------------

  /** Stores a device's verified key packages, all or none. */
  async storeKeyPackages(deviceId: string, packages: VerifiedKeyPackage[], lastResort: VerifiedKeyPackage | null): Promise<Outcome<{ stored: number }>> {
    if (this.isRevoked(deviceId)) return fail("unauthorized", "device revoked");
    return this.ctx.storage.transactionSync(() => this.keyPackages.store(deviceId, packages, lastResort));
  }

  async keyPackageCount(deviceId: string): Promise<number> {
    return this.keyPackages.count(deviceId);
  }

  /** A claim by another user (or this one): their bucket, one token per claim request. */
  async takeClaimToken(): Promise<TakeResult> {
    return takeToken(this.sql, "key_package_claim", this.limits.keyPackageClaimsPerMinute);
  }

  /**
   * One key package of each of these live devices (the Worker asked D1). Each device left
   * with fewer than KEY_PACKAGES_LOW gets a `key_packages_low` event on its socket.
   */
  async claimKeyPackages(deviceIds: string[]): Promise<ClaimedPackage[]> {
    const live = deviceIds.filter((d) => !this.isRevoked(d));
    const low: LogRow[] = [];
    const claimed = this.ctx.storage.transactionSync(() => {
      const taken = this.keyPackages.claim(live);
      for (const c of taken) {
        if (c.remaining < KEY_PACKAGES_LOW) low.push(this.appendForDevice(c.deviceId, { type: "key_packages_low", count: c.remaining }));
      }
      return taken;
    });
    for (const row of low) this.stream(row);
    return claimed;
  }

  /**
   * A conversation is about to accept one of this user's sockets: answers whether it may,
   * counting the user's open conversation sockets in all conversations. At the limit,
   * entries whose socket is gone without a close being reported (a conversation object
   * that was reset) are dropped first, by asking those conversations which are still open.
   */
  async claimConversationSocket(userId: string, conversationId: string, socketId: string, max: number): Promise<boolean> {
    const count = () => this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM conversation_sockets").one().n;
    if (count() >= max) {
      const held = this.sql.exec<{ conversation_id: string }>("SELECT DISTINCT conversation_id FROM conversation_sockets").toArray();
      await Promise.all(
        held.map(async ({ conversation_id: id }) => {
          const open = new Set(await conversationStub(this.env, id).openSocketIds(userId));
          for (const row of this.sql.exec<{ socket_id: string }>("SELECT socket_id FROM conversation_sockets WHERE conversation_id = ?", id).toArray()) {
            if (!open.has(row.socket_id)) this.sql.exec("DELETE FROM conversation_sockets WHERE socket_id = ?", row.socket_id);
          }
        }),
      );
      if (count() >= max) return false;
    }
    this.sql.exec("INSERT OR REPLACE INTO conversation_sockets (socket_id, conversation_id, opened_at) VALUES (?, ?, ?)", socketId, conversationId, Date.now());
    return true;
  }

  /** One of the user's conversation sockets closed. */
  async releaseConversationSocket(socketId: string): Promise<void> {
    this.sql.exec("DELETE FROM conversation_sockets WHERE socket_id = ?", socketId);
  }

  /** A conversation with open sockets subscribes to this user's presence; answers it now. */
  async watchPresence(conversationId: string): Promise<Presence> {
    return this.presence.watch(conversationId);
  }

  async getPresence(): Promise<Presence> {
    return this.presence.current();
  }

  private async collectHeldBack(userId: string): Promise<void> {
    const recent = this.sql
      .exec<{ conversation_id: string }>(
        "SELECT conversation_id FROM conversations WHERE last_activity > ? ORDER BY last_activity DESC LIMIT 50",
        Date.now() - 4 * IDLE_INBOX_INTERVAL_MS,
      )
      .toArray();
    if (recent.length === 0) return;
    const asked = Promise.allSettled(recent.map((r) => conversationStub(this.env, r.conversation_id).flushTo(userId)));
    // Never holds a connect up for long: what is not in by then streams live a moment later.
    await Promise.race([asked, new Promise((resolve) => setTimeout(resolve, 1_000))]);
  }

  /** The newest cursor of the log ("0" when empty): where a device made now starts. */
  headCursor(): string {
    return String(this.sql.exec<{ c: number | null }>("SELECT max(cursor) AS c FROM log").one().c ?? 0);
  }

  /** Who may see this user's presence changed (settings, blocks, contacts): the watching conversations re-check. */
  async privacyChanged(userId: string): Promise<void> {
    await this.presence.policyChanged(userId);
  }

  // ---- device socket ---------------------------------------------------------

  /** The device socket: replays the log after `since`, then streams. The Worker authenticated the caller. */
  override async fetch(request: Request): Promise<Response> {
    const sinceParam = new URL(request.url).searchParams.get("since");
    const since = sinceParam === null ? null : CursorParam.safeParse(sinceParam);
    const caller = this.host.admit(request, {
      refuse: () => (since && !since.success ? json({ error: { code: "invalid_request", message: "since: not a cursor" } }, 400) : null),
      open: () => this.openDeviceSockets(),
      max: this.limits.maxSocketsPerUser,
      limitMessage: `at most ${this.limits.maxSocketsPerUser} device sockets per user`,
    });
    if (caller instanceof Response) return caller;
    const cursor = since?.success ? since.data : null;

    // With no device socket open, conversations feed this inbox at most every
    // IDLE_INBOX_INTERVAL_MS: the ones active just now may still hold a batch back. It is
    // asked for first, so that the replay below holds every message acked before this connect.
    if (this.openDeviceSockets() === 0) await this.collectHeldBack(caller.userId);

    const pair = new WebSocketPair();
    const server = pair[1];
    this.host.accept(server, [`d:${caller.deviceId}`], caller);
    // Closed with 4401 by the alarm when the token expires, even if it never sends a frame.
    await this.alarms.wakeAt(caller.exp * 1000);
    // No await between here and the last replayed frame: nothing can be appended in between.
    if (cursor !== null) this.replay(server, cursor);
    this.ctx.waitUntil(this.presence.deviceOpened(caller.userId));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    await this.host.onMessage(ws, data, {
      sender: (state) => state,
      parse: (raw) => parseDeviceFrame(raw, this.limits.maxBodyBytes),
      handle: async () => this.host.send(ws, { type: "pong" }),
    });
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    answerClose(ws, code);
    await this.presence.deviceClosed(this.openDeviceSockets(ws));
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    closeSocket(ws, 1011, "error");
    await this.presence.deviceClosed(this.openDeviceSockets(ws));
  }

  override async alarm(): Promise<void> {
    await this.alarms.fire();
  }

  private registerAlarmTasks(): void {
    // Sockets whose token expired are closed (4401) first, so presence sees them gone.
    this.alarms.register("sockets", async () => {
      const open = this.openDeviceSockets();
      liveSockets(this.ctx.getWebSockets());
      if (this.openDeviceSockets() < open) await this.presence.deviceClosed(this.openDeviceSockets());
      return firstExpiry(this.ctx.getWebSockets().filter((ws) => ws.readyState === WebSocket.OPEN));
    });
    this.alarms.register("presence", (now) => this.presence.onAlarm(this.openDeviceSockets(), now));
    this.alarms.register("push", async () => {
      await this.subscriptions.flush();
      return null;
    });
  }

  /** Device sockets still open, leaving out one that is closing; closing ones may still be listed. */
  private openDeviceSockets(except?: WebSocket): number {
    return this.ctx.getWebSockets().filter((ws) => ws !== except && ws.readyState === WebSocket.OPEN).length;
  }

  // ---- internals -------------------------------------------------------------

  /**
   * One push per subscribed device without a device socket, for the newest of others'
   * messages in the batch: the payload only says where to look, so one is enough.
   */
  private pushJobs(userId: string, conversationId: string, events: WireEvent[]): PushJob[] {
    const newest = events.reduce<WireEvent | null>(
      (best, e) => (e.type === "message" && e.sender !== userId && e.kind !== "mls_commit" && (!best || e.seq! > best.seq!) ? e : best),
      null,
    );
    if (!newest || this.subscriptions.knownEmpty()) return [];
    const online = new Set(
      this.ctx
        .getWebSockets()
        .filter((ws) => ws.readyState === WebSocket.OPEN)
        .map((ws) => this.host.attachment(ws).deviceId),
    );
    const media = newest.kind === "media" ? { kind: "media" as const } : {};
    return this.subscriptions.jobsFor(userId, online, { type: "message", conversation_id: conversationId, seq: newest.seq!, ...media });
  }

  private replay(ws: WebSocket, since: number): void {
    const { deviceId } = this.host.attachment(ws);
    let from = since;
    for (;;) {
      const rows = this.sql
        .exec<LogRow>(
          "SELECT cursor, event, device_id FROM log WHERE cursor > ? AND (device_id IS NULL OR device_id = ?) ORDER BY cursor LIMIT ?",
          from,
          deviceId,
          REPLAY_PAGE,
        )
        .toArray();
      for (const row of rows) this.host.send(ws, deviceFrame(row));
      if (rows.length < REPLAY_PAGE) return;
      from = rows.at(-1)!.cursor;
    }
  }

  /** Sends a freshly appended row to the sockets it is for: every device's (`all`, when known), or one device's. */
  private stream(row: LogRow, all?: WebSocket[]): void {
    const sockets = row.device_id === null ? (all ?? this.ctx.getWebSockets()) : this.ctx.getWebSockets(`d:${row.device_id}`);
    if (sockets.length === 0) return;
    const frame = deviceFrame(row);
    for (const ws of liveSockets(sockets)) this.host.send(ws, frame);
  }

  /**
   * Appends events to the log, up to LOG_ROWS_PER_INSERT a statement, stored as the text the
   * conversation sent; answers the rows added in log order, less messages the log already holds.
   */
  private appendAll(conversationId: string, events: WireEvent[]): LogRow[] {
    if (events.length === 0) return [];
    const entries: LogEntry[] = events.map((e) => {
      if (e.type !== "mls_welcome") return [e.type, e.seq, e.sender, e.json, null, e.kind];
      // For one device only: the log keeps whose it is beside the event, not in it.
      const { to_device_id, ...welcome } = eventOf(e) as Extract<FeedEvent, { type: "mls_welcome" }>;
      return [e.type, null, null, JSON.stringify(welcome), to_device_id, null];
    });
    const now = Date.now();
    const rows: LogRow[] = [];
    for (let i = 0; i < entries.length; i += LOG_ROWS_PER_INSERT) rows.push(...this.insertLog(conversationId, now, entries.slice(i, i + LOG_ROWS_PER_INSERT)));
    return rows;
  }

  /**
   * Inserts up to LOG_ROWS_PER_INSERT entries in one statement. The new rows' cursors follow
   * from the last one inserted (a multi-row insert numbers its rows one after another), so
   * nothing is read back: one row read per statement instead of four per row with `json_each`
   * and `RETURNING`. An entry the log already holds (a message delivered twice, which the feed
   * positions should rule out) fails the whole statement, which SQLite undoes by itself; that
   * batch then goes row by row, skipping what is already there.
   */
  private insertLog(conversationId: string, now: number, entries: LogEntry[]): LogRow[] {
    const values = entries.map((_, i) => `(?1, ?${3 + i * 6}, ?${4 + i * 6}, ?${5 + i * 6}, ?${6 + i * 6}, ?2, ?${7 + i * 6}, ?${8 + i * 6})`).join(", ");
    try {
      this.sql.exec(`INSERT INTO log (conversation_id, type, seq, sender_id, event, created_at, device_id, kind) VALUES ${values}`, conversationId, now, ...entries.flat());
    } catch (err) {
      if (!String(err).includes("UNIQUE")) throw err;
      return entries.flatMap((entry) => this.insertLogIfNew(conversationId, now, entry));
    }
    const last = this.sql.exec<{ id: number }>("SELECT last_insert_rowid() AS id").one().id;
    return entries.map(([, , , event, deviceId], i) => ({ cursor: last - entries.length + 1 + i, event, device_id: deviceId }));
  }

  private insertLogIfNew(conversationId: string, now: number, [type, seq, senderId, event, deviceId, kind]: LogEntry): LogRow[] {
    return this.sql
      .exec<LogRow>(
        `INSERT OR IGNORE INTO log (conversation_id, type, seq, sender_id, event, created_at, device_id, kind)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING cursor, event, device_id`,
        conversationId,
        type,
        seq,
        senderId,
        event,
        now,
        deviceId,
        kind,
      )
      .toArray();
  }

  /** Appends an event of one device that no conversation sent (conversation_id ''). */
  private appendForDevice(deviceId: string, event: DeviceOnlyEvent): LogRow {
    const json = JSON.stringify(event);
    const cursor = this.sql
      .exec<{ cursor: number }>(
        "INSERT INTO log (conversation_id, type, event, created_at, device_id) VALUES ('', ?, ?, ?, ?) RETURNING cursor",
        event.type,
        json,
        Date.now(),
        deviceId,
      )
      .one().cursor;
    return { cursor, event: json, device_id: deviceId };
  }

  /** The list's last message (if newer than the one it shows) and the feed position, in one statement. */
  private listMessageAndPosition(conversationId: string, message: WireEvent, upto: number): void {
    // Every SET expression reads the row as it was, so `last_seq < ?2` is the old last_seq throughout.
    this.sql.exec(
      `UPDATE conversations SET
         last_message = CASE WHEN last_seq < ?2 THEN ?1 ELSE last_message END,
         last_activity = CASE WHEN last_seq < ?2 THEN max(last_activity, ?3) ELSE last_activity END,
         last_seq = max(last_seq, ?2),
         last_feed_id = max(last_feed_id, ?4)
       WHERE conversation_id = ?5`,
      messageJson(message),
      message.seq,
      message.at,
      upto,
      conversationId,
    );
  }

  private applyToList(userId: string, conversationId: string, event: FeedEvent): void {
    switch (event.type) {
      case "message":
        this.sql.exec(
          `UPDATE conversations SET last_message = ?, last_seq = ?, last_activity = max(last_activity, ?)
           WHERE conversation_id = ? AND last_seq < ?`,
          JSON.stringify(event.message),
          event.message.seq,
          event.message.created_at,
          conversationId,
          event.message.seq,
        );
        return;
      case "message_updated":
        this.messageUpdated(conversationId, event.message);
        return;
      case "conversation":
        this.sql.exec(
          `UPDATE conversations SET snapshot = ?, removed = 0,
             last_activity = CASE WHEN snapshot IS NULL OR removed = 1 THEN ? ELSE last_activity END
           WHERE conversation_id = ?`,
          JSON.stringify(event.conversation),
          Date.now(),
          conversationId,
        );
        return;
      case "removed":
        this.sql.exec("UPDATE conversations SET removed = 1 WHERE conversation_id = ?", conversationId);
        return;
      case "mls_welcome":
        return;
      case "list_flags":
        applyListFlags(this.sql, conversationId, event);
        return;
      case "joined":
        this.sql.exec(
          `UPDATE conversations SET join_seq = ?, own_before_join = ?, earlier_hidden = ?,
             last_message = CASE WHEN ? THEN NULL ELSE last_message END WHERE conversation_id = ?`,
          event.join_seq,
          JSON.stringify(event.own_seqs),
          event.earlier_hidden ? 1 : 0,
          event.earlier_hidden ? 1 : 0,
          conversationId,
        );
        if (event.last_message) this.applyToList(userId, conversationId, { type: "message", message: event.last_message });
        return;
      case "receipt":
        if (event.kind === "read" && event.user_id === userId) {
          this.sql.exec(
            "UPDATE conversations SET last_read_seq = max(last_read_seq, ?) WHERE conversation_id = ?",
            event.up_to_seq,
            conversationId,
          );
        }
        return;
    }
  }

  /**
   * Section 13: the list shows the latest message as it now is; a deleted one's content also
   * leaves every logged event about it, so no replay or list can show it again.
   */
  private messageUpdated(conversationId: string, message: Message): void {
    const json = JSON.stringify(message);
    this.sql.exec("UPDATE conversations SET last_message = ? WHERE conversation_id = ? AND last_seq = ?", json, conversationId, message.seq);
    if (!message.deleted) return;
    // One statement per type, each served by its partial index.
    for (const type of ["message", "message_updated"]) {
      this.sql.exec(
        `UPDATE log SET event = json_set(event, '$.message', json(?)) WHERE conversation_id = ? AND seq = ? AND type = '${type}'`,
        json,
        conversationId,
        message.seq,
      );
    }
  }

  /**
   * Others' messages above the read marker. The log holds those since the user joined;
   * below `join_seq` every seq is a message (seq is gapless), less the user's own.
   */
  private unreadCount(userId: string, row: ConversationRow): number {
    const read = row.last_read_seq;
    const sinceJoin = this.sql
      .exec<{ n: number }>(
        `SELECT count(*) AS n FROM log WHERE type = 'message' AND conversation_id = ? AND seq > ? AND sender_id != ?
           AND coalesce(kind, '') NOT IN (${SERVER_MESSAGE_KINDS.map(() => "?").join(", ")})`,
        row.conversation_id,
        Math.max(read, row.join_seq),
        userId,
        ...SERVER_MESSAGE_KINDS,
      )
      .one().n;
    if (read >= row.join_seq || row.earlier_hidden) return sinceJoin;
    const ownBefore = (JSON.parse(row.own_before_join) as number[]).filter((seq) => seq > read && seq <= row.join_seq).length;
    return sinceJoin + (row.join_seq - read - ownBefore);
  }

  private summary(userId: string, row: ConversationRow): ConversationSummary {
    const unread = this.unreadCount(userId, row);
    return {
      ...(JSON.parse(row.snapshot!) as Omit<ConversationSummary, "last_message" | "unread_count" | "last_read_seq">),
      last_message: row.last_message ? (JSON.parse(row.last_message) as Message) : null,
      unread_count: unread,
      last_read_seq: row.last_read_seq,
      request: row.request === 1,
    };
  }

  private isRevoked(deviceId: string): boolean {
    return this.sql.exec("SELECT 1 FROM revoked_devices WHERE device_id = ?", deviceId).toArray().length > 0;
  }
}

/**
 * `{"type", "cursor", ...}`: the stored event with its cursor spliced in after the type.
 * The log holds only events written from typed values (appendAll, appendForDevice), so the
 * text is a DeviceEvent's.
 */
function deviceFrame(row: LogRow): Wire<DeviceEvent> {
  // Stored events are written type first: splice the cursor in after it rather than parse and re-encode.
  const head = /^\{"type":"[a-z_]+"(?=[,}])/.exec(row.event)?.[0];
  if (head) return `${head},"cursor":"${row.cursor}"${row.event.slice(head.length)}` as Wire<DeviceEvent>;
  const { type, ...rest } = JSON.parse(row.event) as FeedEvent | DeviceOnlyEvent;
  return JSON.stringify({ type, cursor: String(row.cursor), ...rest }) as Wire<DeviceEvent>;
}

const encodeCursor = (value: unknown) => btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");

function decodeCursor(cursor: string): unknown {
  try {
    return JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/")));
  } catch {
    return undefined;
  }
}
