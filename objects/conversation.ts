/**
 * One Durable Object per conversation: the single writer of its members, its message
 * order and its markers, the host of its open conversation sockets, and the source of
 * every event its members' inboxes receive.
 */
import { DurableObject } from "cloudflare:workers";
import {
  CLOSE_FORBIDDEN,
  CLOSE_UNAUTHORIZED,
  fail,
  ok,
  type ClientFrame,
  type CommitInput,
  type Conversation as ConversationShape,
  type Encryption,
  type Message,
  type Outcome,
  type ReceiptKind,
  type Role,
  type SendInput,
} from "../protocol";
import { limits } from "../worker/lib/config";
import { newId } from "../worker/lib/ids";
import { CallSignals, RING_TIMEOUT_MS } from "./calls";
import { takeFrom, type Bucket } from "./rate-limit";
import { ConversationStore, CONVERSATION_SCHEMA } from "./conversation-store";
import { MlsStore, type CommitFacts } from "./mls-store";
import { deviceIdentity } from "../mls/adapter";
import { directory, forgetMember, liveDevicesOf, recordConversation, recordMembers, unknownUsers } from "./directory";
import { FanOut } from "./fanout";
import { SendLeases } from "./send-leases";
import type { Presence } from "./presence";
import { PresenceWatch } from "./presence-watch";
import { errorFrame, parseFrame } from "./frames";
import {
  answerClose,
  closeSocket,
  firstExpiry,
  json,
  liveSockets,
  upgradeCaller,
  migrate,
  sendFrame,
  type Caller,
  type SocketIdentity,
} from "./schema";

const ringTimeoutMs = (env: Env) => {
  const seconds = Number((env as unknown as Record<string, unknown>).CALL_RING_TIMEOUT_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : RING_TIMEOUT_MS;
};

/** A typing `start` that is not renewed within this long ends by itself. */
export const TYPING_TTL_MS = 6_000;

interface SocketState extends SocketIdentity {
  /** When this socket's typing indicator lapses; 0 when it is not typing. */
  typingUntil: number;
  /** Its entry among the user's conversation sockets, counted by their inbox. */
  socketId?: string;
  /** This socket's typing and call frame buckets (TYPING_FRAMES_PER_MINUTE, CALL_FRAMES_PER_MINUTE). */
  buckets?: { typing?: Bucket; call?: Bucket };
}

export interface CreateSpec {
  conversationId: string;
  type: "direct" | "group";
  name: string | null;
  directKey: string | null;
  creator: string;
  /** Everyone but the creator. */
  others: string[];
  /** Section 10; default "none". */
  encryption?: Encryption;
}

export class Conversation extends DurableObject<Env> {
  private readonly store: ConversationStore;
  private readonly fanout: FanOut;
  private readonly presence: PresenceWatch;
  private readonly calls: CallSignals;
  private readonly mls: MlsStore;
  private readonly limits = limits(this.env as unknown as Record<string, unknown>);
  private readonly sendTokens = new SendLeases(this.limits.sendRatePerMinute, (userId, want, giveBack) =>
    this.env.INBOX.get(this.env.INBOX.idFromName(userId)).leaseSendTokens(want, giveBack),
  );

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new ConversationStore(ctx.storage.sql);
    this.fanout = new FanOut(ctx, env, this.store);
    this.presence = new PresenceWatch(ctx.storage.sql, env);
    this.mls = new MlsStore(ctx.storage.sql);
    this.calls = new CallSignals(ctx.storage, {
      conversationId: () => this.store.info()!.id,
      activeMembers: () => this.store.activeMembers().map((m) => m.user_id),
      sockets: (tag) => this.sockets(tag),
      socketIdentity: (ws) => ws.deserializeAttachment() as SocketState,
      ringDevices: (userIds, frame, exceptDevice) => this.ringDevices(userIds, frame, exceptDevice),
      storeCallEvent: (caller, callId, content) => this.storeCallEvent(caller, callId, content),
      wakeAt: (at) => this.fanout.wakeAt(at),
    }, ringTimeoutMs(env));
    ctx.blockConcurrencyWhile(async () => {
      // Any well-formed id reaches an object: one that holds no conversation writes nothing
      // (its schema is created by create()); one that does is brought up to date.
      if (this.store.hasTables()) migrate(ctx.storage.sql, CONVERSATION_SCHEMA);
      // Woken after a crash or eviction with deliveries still owed: resume them now, not at the alarm.
      if (this.store.info() && this.store.membersOwed().length > 0) this.fanout.resume();
    });
    // Answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
  }

  // ---- membership ------------------------------------------------------------

  /** Creates the conversation, or answers the existing one (`created: false`); D1 is written first. */
  async create(spec: CreateSpec): Promise<Outcome<ConversationShape>> {
    return this.exclusively(() => this.createNow(spec));
  }

  private async createNow(spec: CreateSpec): Promise<Outcome<ConversationShape>> {
    if (this.store.info()) return ok(this.store.snapshot(), false);
    const others = [...new Set(spec.others)].filter((id) => id !== spec.creator);
    if (others.length + 1 > this.limits.maxGroupMembers) {
      return fail("limit_exceeded", `a conversation has at most ${this.limits.maxGroupMembers} members`);
    }
    const dir = directory(this.env.DB);
    const unknown = await unknownUsers(dir, others);
    if (unknown.length) return fail("not_found", `unknown user: ${unknown[0]}`);

    const now = Date.now();
    migrate(this.ctx.storage.sql, CONVERSATION_SCHEMA);
    const creatorRole: Role = spec.type === "group" ? "admin" : "member";
    const members = [{ userId: spec.creator, role: creatorRole }, ...others.map((userId) => ({ userId, role: "member" as Role }))];
    const encryption = spec.encryption ?? "none";
    await recordConversation(
      dir,
      { id: spec.conversationId, type: spec.type, name: spec.name, directKey: spec.directKey, encryption, createdBy: spec.creator, createdAt: now },
      members,
    );
    this.ctx.storage.transactionSync(() => {
      this.store.createInfo({ id: spec.conversationId, type: spec.type, name: spec.name, created_by: spec.creator, created_at: now, encryption });
      for (const m of members) this.store.upsertMember(m.userId, m.role, now);
      this.store.appendFeed({ type: "conversation", conversation: this.store.snapshot() });
    });
    await this.fanout.kick();
    return ok(this.store.snapshot(), true);
  }

  /** The conversation as its members see it. */
  async describe(caller: Caller): Promise<Outcome<ConversationShape>> {
    const denied = this.checkMember(caller.userId);
    return denied ?? ok(this.store.snapshot());
  }

  async addMembers(caller: Caller, userIds: string[]): Promise<Outcome<ConversationShape>> {
    return this.exclusively(() => this.addMembersNow(caller, userIds));
  }

  private async addMembersNow(caller: Caller, userIds: string[]): Promise<Outcome<ConversationShape>> {
    const denied = this.checkMember(caller.userId) ?? this.checkAdmin(caller.userId);
    if (denied) return denied;
    if (this.store.info()!.type === "direct") return fail("forbidden", "members cannot be added to a direct conversation");
    const current = new Set(this.store.activeMembers().map((m) => m.user_id));
    const fresh = [...new Set(userIds)].filter((id) => !current.has(id));
    if (current.size + fresh.length > this.limits.maxGroupMembers) {
      return fail("limit_exceeded", `a conversation has at most ${this.limits.maxGroupMembers} members`);
    }
    if (fresh.length === 0) return ok(this.store.snapshot());
    const dir = directory(this.env.DB);
    const unknown = await unknownUsers(dir, fresh);
    if (unknown.length) return fail("not_found", `unknown user: ${unknown[0]}`);
    const now = Date.now();
    await recordMembers(dir, this.store.info()!.id, fresh.map((userId) => ({ userId, role: "member" as Role })), now);
    this.ctx.storage.transactionSync(() => {
      for (const id of fresh) if (!this.store.activeMember(id)) this.store.upsertMember(id, "member", now);
      for (const id of fresh) this.mls.removalCancelled(id);
      this.store.appendFeed({ type: "conversation", conversation: this.store.snapshot() });
      for (const id of fresh) this.store.appendFeed(this.store.joinedEvent(id), id);
    });
    await this.fanout.kick();
    if (this.ctx.getWebSockets().length > 0) this.ctx.waitUntil(this.announceNewMembers());
    return ok(this.store.snapshot());
  }

  /** Removes a member (admins), or the caller themself (leaving). Their sockets here close with 4403. */
  async removeMember(caller: Caller, userId: string): Promise<Outcome<null>> {
    return this.exclusively(() => this.removeMemberNow(caller, userId));
  }

  private async removeMemberNow(caller: Caller, userId: string): Promise<Outcome<null>> {
    const denied = this.checkMember(caller.userId) ?? (userId === caller.userId ? null : this.checkAdmin(caller.userId));
    if (denied) return denied;
    const info = this.store.info()!;
    if (info.type === "direct") return fail("forbidden", "nobody can be removed from a direct conversation");
    if (!this.store.activeMember(userId)) return fail("not_found", "not a member of this conversation");

    await forgetMember(directory(this.env.DB), info.id, userId);
    this.ctx.storage.transactionSync(() => {
      const removedAt = this.store.appendFeed({ type: "removed", conversation_id: info.id }, userId);
      this.store.deactivateMember(userId, removedAt);
      if (info.encryption === "mls") this.mls.removalPending(userId);
      const remaining = this.store.activeMembers();
      // A group is never left without an admin: the longest-standing member takes over.
      if (remaining.length && !remaining.some((m) => m.role === "admin")) this.store.setRole(remaining[0]!.user_id, "admin");
      this.store.appendFeed({ type: "conversation", conversation: this.store.snapshot() });
    });
    for (const ws of this.ctx.getWebSockets(userId)) closeSocket(ws, CLOSE_FORBIDDEN, "removed from the conversation");
    this.presence.forget(userId);
    await this.fanout.kick();
    return ok(null);
  }

  /**
   * Membership changes check, write D1, then write here; nothing else may run in between,
   * or two concurrent adds could both pass the size check. They are rare, so the pause is cheap.
   */
  private exclusively<T>(work: () => Promise<Outcome<T>>): Promise<Outcome<T>> {
    return this.ctx.blockConcurrencyWhile(async () => {
      try {
        return await work();
      } catch (err) {
        console.error("membership change failed", err);
        return fail("internal", "could not record the change; try again");
      }
    });
  }

  // ---- messages --------------------------------------------------------------

  /** Sends over HTTP: stores, answers, and relays to the open sockets. */
  async postMessage(caller: Caller, input: SendInput): Promise<Outcome<Message>> {
    const result = await this.send(caller, input);
    if (!result.ok) return result;
    if (result.created) this.broadcast({ type: "message", message: result.value });
    return result;
  }

  async history(caller: Caller, q: { after?: number; before?: number; limit: number }) {
    const denied = this.checkMember(caller.userId);
    if (denied) return denied;
    const messages = this.store.history(q);
    const lastSeq = this.store.info()!.last_seq;
    const tail = messages.at(-1)?.seq;
    return ok({ messages, next_after_seq: tail !== undefined && tail < lastSeq ? tail : null });
  }

  /** Moves the caller's read marker, or their device's delivered marker, forward. */
  async mark(caller: Caller, kind: ReceiptKind, upTo: number): Promise<Outcome<null>> {
    const denied = this.checkMember(caller.userId);
    if (denied) return denied;
    const info = this.store.info()!;
    if (upTo > info.last_seq) return fail("invalid_request", `up_to_seq ${upTo} is beyond the last message (${info.last_seq})`);
    const moved = this.ctx.storage.transactionSync(() => {
      const advanced =
        kind === "read"
          ? this.store.advanceRead(caller.userId, upTo)
          : this.store.advanceDelivered(caller.userId, caller.deviceId, upTo);
      if (advanced) this.store.appendFeed({ type: "receipt", conversation_id: info.id, user_id: caller.userId, kind, up_to_seq: upTo });
      return advanced;
    });
    if (moved) {
      this.broadcast({ type: "receipt", conversation_id: info.id, user_id: caller.userId, kind, up_to_seq: upTo });
      await this.fanout.kick();
    }
    return ok(null);
  }

  /**
   * A watched member's presence changed. Answers whether this conversation still wants
   * to hear about them: not once it has no open sockets, or they are no longer a member.
   */
  async presenceChanged(userId: string, presence: Presence): Promise<boolean> {
    if (!this.store.info()) return false;
    if (this.ctx.getWebSockets().length === 0) {
      this.presence.forget();
      return false;
    }
    if (!this.store.activeMember(userId)) {
      this.presence.forget(userId);
      return false;
    }
    this.broadcast(this.presence.update(userId, presence));
    return true;
  }

  /** Refuses the device from now on and closes its sockets here with 4401. */
  async revokeDevice(deviceId: string): Promise<void> {
    if (!this.store.info()) return;
    this.store.revokeDevice(deviceId);
    for (const ws of this.ctx.getWebSockets(`d:${deviceId}`)) closeSocket(ws, CLOSE_UNAUTHORIZED, "device revoked");
  }

  private async send(caller: Caller, input: SendInput): Promise<Outcome<Message>> {
    const denied = this.checkMember(caller.userId);
    if (denied) return denied;
    if (input.content.length > this.limits.maxContentChars) {
      return fail("too_large", `content is longer than ${this.limits.maxContentChars} characters`);
    }
    if (input.kind === "media" && !input.media_id) return fail("invalid_request", "media_id: required for kind media");
    if (this.store.encryption() === "mls" && input.kind !== "encrypted") {
      return fail("invalid_request", 'kind: an "mls" conversation takes only kind "encrypted" (and commits through …/mls/commits)');
    }
    const original = this.store.messageByClientId(caller.userId, input.client_message_id);
    if (original) return ok(original, false);
    const token = await this.sendTokens.take(caller.userId);
    if (!token.ok) return fail("rate_limited", "too many messages; slow down", token.retryAfterSeconds);
    // The same message may have been stored while the bucket answered.
    const raced = this.store.messageByClientId(caller.userId, input.client_message_id);
    if (raced) return ok(raced, false);
    const message = this.ctx.storage.transactionSync(() =>
      this.store.appendMessage({
        message_id: newId("m"),
        sender_id: caller.userId,
        sender_device_id: caller.deviceId,
        client_message_id: input.client_message_id,
        kind: input.kind,
        content: input.content,
        ...(input.media_id ? { media_id: input.media_id } : {}),
        created_at: Date.now(),
      }),
    );
    await this.fanout.kick();
    return ok(message, true);
  }

  // ---- MLS Delivery Service (section 10) ------------------------------------------

  /**
   * A commit, accepted when it moves on from the current epoch and its new tree holds only
   * live devices of current members; stored as a `mls_commit` message, its welcome then
   * owed to each added device. The Worker decoded it and checked its signatures.
   */
  async commitMls(caller: Caller, input: CommitInput, facts: CommitFacts): Promise<Outcome<{ epoch: number; seq: number }>> {
    const denied = this.checkMember(caller.userId);
    if (denied) return denied;
    const info = this.store.info()!;
    if (info.encryption !== "mls") return fail("invalid_request", 'not an "mls" conversation');
    const repeat = this.commitRepeat(caller, input);
    if (repeat) return repeat;
    const isMember = (userId: string) => this.store.activeMember(userId) !== null;
    // Fail fast before the look-ups; judged again, synchronously, right before the write.
    const early = this.mls.judge(info.id, caller, input.epoch, facts, isMember, null);
    if (!early.ok) return early;
    const candidates = this.mls.candidates(input.epoch, caller, facts);
    const live = new Set(
      candidates.length ? (await liveDevicesOf(directory(this.env.DB), candidates)).map((d) => deviceIdentity(d.userId, d.deviceId)) : [],
    );
    const token = await this.sendTokens.take(caller.userId);
    if (!token.ok) return fail("rate_limited", "too many messages; slow down", token.retryAfterSeconds);

    const raced = this.commitRepeat(caller, input);
    if (raced) return raced;
    const verdict = this.mls.judge(info.id, caller, input.epoch, facts, isMember, live);
    if (!verdict.ok) return verdict;
    const epoch = input.epoch + 1;
    const message = this.ctx.storage.transactionSync(() => {
      const stored = this.store.appendMessage({
        message_id: newId("m"),
        sender_id: caller.userId,
        sender_device_id: caller.deviceId,
        client_message_id: input.client_message_id,
        kind: "mls_commit",
        content: input.commit,
        created_at: Date.now(),
      });
      this.mls.record(epoch, stored.seq, input.group_info, verdict.value.devices);
      if (input.welcome !== undefined) {
        for (const d of verdict.value.added) {
          this.store.appendFeed(
            { type: "mls_welcome", conversation_id: info.id, epoch, welcome: input.welcome, to_device_id: d.deviceId },
            d.userId,
          );
        }
      }
      return stored;
    });
    this.broadcast({ type: "message", message });
    await this.fanout.kick();
    return ok({ epoch, seq: message.seq }, true);
  }

  /** The answer to a commit this caller already made with this client_message_id. */
  private commitRepeat(caller: Caller, input: CommitInput): Outcome<{ epoch: number; seq: number }> | null {
    const original = this.store.messageByClientId(caller.userId, input.client_message_id);
    if (!original) return null;
    const epoch = original.kind === "mls_commit" ? this.mls.epochOfSeq(original.seq) : null;
    if (epoch === null) return fail("invalid_request", "client_message_id: already used for a message that is not a commit");
    return ok({ epoch, seq: original.seq }, false);
  }

  /** The group info of the current epoch, or of `epoch`; members only. */
  async mlsGroupInfo(caller: Caller, epoch: number | null): Promise<Outcome<{ epoch: number; group_info: string }>> {
    const denied = this.checkMember(caller.userId);
    if (denied) return denied;
    if (this.store.info()!.encryption !== "mls") return fail("not_found", 'not an "mls" conversation');
    const found = this.mls.groupInfo(epoch ?? this.mls.currentEpoch());
    return found ? ok(found) : fail("not_found", epoch === null ? "no commit yet: the group is at epoch 0" : `no group info for epoch ${epoch}`);
  }

  private checkMember(userId: string) {
    if (!this.store.exists()) return fail("not_found", "no such conversation");
    if (!this.store.activeMember(userId)) return fail("forbidden", "not a member of this conversation");
    return null;
  }

  private checkAdmin(userId: string) {
    return this.store.activeMember(userId)?.role === "admin" ? null : fail("forbidden", "only admins can do that");
  }

  // ---- sockets ---------------------------------------------------------------

  /** The conversation socket; the Worker has authenticated the caller and forwards the upgrade. */
  override async fetch(request: Request): Promise<Response> {
    const caller = upgradeCaller(request);
    if (caller instanceof Response) return caller;
    const denied = this.checkMember(caller.userId);
    if (denied) return json({ error: denied.error }, denied.error.code === "not_found" ? 404 : 403);
    if (this.store.isRevoked(caller.deviceId)) return json({ error: { code: "unauthorized", message: "device revoked" } }, 401);
    if (this.ctx.getWebSockets(caller.userId).length >= this.limits.maxSocketsPerUser) {
      const message = `at most ${this.limits.maxSocketsPerUser} sockets per user on a conversation`;
      return json({ error: { code: "limit_exceeded", message } }, 422);
    }
    const socketId = crypto.randomUUID();
    const inbox = this.env.INBOX.get(this.env.INBOX.idFromName(caller.userId));
    if (!(await inbox.claimConversationSocket(caller.userId, this.store.info()!.id, socketId, this.limits.maxConversationSocketsPerUser))) {
      const message = `at most ${this.limits.maxConversationSocketsPerUser} conversation sockets per user`;
      return json({ error: { code: "limit_exceeded", message } }, 422);
    }

    const pair = new WebSocketPair();
    const server = pair[1];
    this.ctx.acceptWebSocket(server, [caller.userId, `d:${caller.deviceId}`]);
    server.serializeAttachment({ ...caller, typingUntil: 0, socketId } satisfies SocketState);
    // Closed with 4401 by the alarm when the token expires, even if it never sends a frame.
    await this.fanout.wakeAt(caller.exp * 1000);
    this.ctx.waitUntil(this.greet(server));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /** Tells a socket that just opened every member's presence, watching them first if need be. */
  private async greet(ws: WebSocket): Promise<void> {
    const members = this.store.activeMembers().map((m) => m.user_id);
    await this.presence.ensure(this.store.info()!.id, members);
    if (liveSockets([ws]).length === 0) return;
    for (const frame of this.presence.frames(members)) sendFrame(ws, frame);
  }

  private async announceNewMembers(): Promise<void> {
    const members = this.store.activeMembers().map((m) => m.user_id);
    for (const frame of await this.presence.ensure(this.store.info()!.id, members)) this.broadcast(frame);
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const state = ws.deserializeAttachment() as SocketState;
    if (state.exp * 1000 <= Date.now() || this.store.isRevoked(state.deviceId)) {
      return closeSocket(ws, CLOSE_UNAUTHORIZED, "token expired or device revoked");
    }
    if (!this.store.activeMember(state.userId)) return closeSocket(ws, CLOSE_FORBIDDEN, "not a member");

    const parsed = parseFrame(data, this.limits.maxBodyBytes);
    if ("error" in parsed) return sendFrame(ws, errorFrame(parsed.error, parsed.ref));
    await this.onFrame(ws, state, parsed.frame);
  }

  private async onFrame(ws: WebSocket, state: SocketState, frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case "send": {
        const { type: _, ...input } = frame;
        const result = await this.send(state, input);
        if (!result.ok) return sendFrame(ws, errorFrame(result.error, frame.client_message_id));
        sendFrame(ws, { type: "sent", client_message_id: frame.client_message_id, message: result.value });
        if (result.created) this.broadcast({ type: "message", message: result.value });
        return;
      }
      case "delivered":
      case "read": {
        const result = await this.mark(state, frame.type, frame.up_to_seq);
        if (!result.ok) sendFrame(ws, errorFrame(result.error, null));
        return;
      }
      case "typing": {
        if (this.overRate(ws, state, "typing", this.limits.typingFramesPerMinute)) return;
        const typingUntil = frame.state === "start" ? Date.now() + TYPING_TTL_MS : 0;
        ws.serializeAttachment({ ...state, typingUntil } satisfies SocketState);
        this.broadcastTyping(ws, state, frame.state, typingUntil);
        if (typingUntil) await this.fanout.wakeAt(typingUntil);
        return;
      }
      case "ping":
        // Only reached when the frame's text differs from the auto-response's, e.g. extra spaces.
        return sendFrame(ws, { type: "pong" });
      case "call": {
        if (this.overRate(ws, state, "call", this.limits.callFramesPerMinute)) return;
        const refused = await this.calls.onFrame(ws, state, frame);
        if (refused) sendFrame(ws, errorFrame(refused, null));
        return;
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    const state = ws.deserializeAttachment() as SocketState | null;
    if (state?.typingUntil && state.typingUntil > Date.now()) this.broadcastTyping(ws, state, "stop", 0);
    answerClose(ws, code);
    this.released(state);
    // Nobody left to tell: the cache would go stale, so the next socket re-subscribes.
    if (!this.ctx.getWebSockets().some((s) => s !== ws && s.readyState === WebSocket.OPEN)) this.presence.forget();
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    closeSocket(ws, 1011, "error");
    this.released(ws.deserializeAttachment() as SocketState | null);
  }

  /** Tells the user's inbox that one of their conversation sockets is gone. */
  private released(state: SocketState | null): void {
    if (!state?.socketId) return;
    const inbox = this.env.INBOX.get(this.env.INBOX.idFromName(state.userId));
    this.ctx.waitUntil(inbox.releaseConversationSocket(state.socketId).catch(() => undefined));
  }

  /** The ids of this user's open sockets here (their inbox checks its count against them). */
  async openSocketIds(userId: string): Promise<string[]> {
    return this.ctx
      .getWebSockets(userId)
      .filter((ws) => ws.readyState === WebSocket.OPEN)
      .map((ws) => (ws.deserializeAttachment() as SocketState).socketId)
      .filter((id): id is string => id !== undefined);
  }

  /** Drains what inboxes are still owed, and ends typing indicators that were not renewed. */
  override async alarm(): Promise<void> {
    if (!this.store.info()) return;
    const now = Date.now();
    for (const ws of this.sockets()) {
      const state = ws.deserializeAttachment() as SocketState;
      if (state.typingUntil && state.typingUntil <= now) {
        ws.serializeAttachment({ ...state, typingUntil: 0 } satisfies SocketState);
        this.broadcastTyping(ws, state, "stop", 0);
      }
    }
    const nextCall = await this.calls.onAlarm(now);
    const next = [nextCall, this.nextTypingExpiry(), firstExpiry(this.ctx.getWebSockets())].filter((t): t is number => t !== null);
    await this.fanout.onAlarm(next.length ? Math.min(...next) : null);
  }

  /** A call frame to members' device sockets, through their inboxes (which push a ring to devices without one). */
  private async ringDevices(userIds: string[], frame: Record<string, unknown>, exceptDevice?: string): Promise<void> {
    const text = JSON.stringify(frame);
    await Promise.allSettled(userIds.map((u) => this.env.INBOX.get(this.env.INBOX.idFromName(u)).callFrame(u, text, exceptDevice ?? null)));
  }

  /** One `kind:"call"` event per call, in the conversation's order (idempotent by call id). */
  private async storeCallEvent(caller: Caller, callId: string, content: string): Promise<void> {
    const clientMessageId = `call:${callId}`;
    if (this.store.messageByClientId(caller.userId, clientMessageId)) return;
    const message = this.ctx.storage.transactionSync(() =>
      this.store.appendMessage({
        message_id: newId("m"),
        sender_id: caller.userId,
        sender_device_id: caller.deviceId,
        client_message_id: clientMessageId,
        kind: "call" as Message["kind"],
        content,
        created_at: Date.now(),
      }),
    );
    this.broadcast({ type: "message", message });
    await this.fanout.kick();
  }

  private nextTypingExpiry(): number | null {
    let next: number | null = null;
    for (const ws of this.ctx.getWebSockets()) {
      const until = (ws.deserializeAttachment() as SocketState).typingUntil;
      if (until && (next === null || until < next)) next = until;
    }
    return next;
  }

  private broadcastTyping(from: WebSocket, who: Caller, state: "start" | "stop", expiresAt: number): void {
    const frame = JSON.stringify({
      type: "typing",
      user_id: who.userId,
      device_id: who.deviceId,
      state,
      ...(expiresAt ? { expires_at: expiresAt } : {}),
    });
    for (const ws of this.sockets()) if (ws !== from) sendFrame(ws, frame);
  }

  private broadcast(frame: unknown): void {
    const text = JSON.stringify(frame);
    for (const ws of this.sockets()) sendFrame(ws, text);
  }

  /**
   * Takes a token from the socket's own bucket for this kind of frame (kept in its
   * attachment, so hibernation does not refill it). Over the limit, the frame is dropped
   * and the socket told `rate_limited`; `state` is updated in place for the caller.
   */
  private overRate(ws: WebSocket, state: SocketState, kind: "typing" | "call", perMinute: number): boolean {
    const { result, bucket } = takeFrom(state.buckets?.[kind], perMinute);
    state.buckets = { ...state.buckets, [kind]: bucket };
    ws.serializeAttachment(state satisfies SocketState);
    if (result.ok) return false;
    const message = `too many ${kind} frames on this socket; dropped`;
    sendFrame(ws, errorFrame({ code: "rate_limited", message, retryAfter: result.retryAfterSeconds }, null));
    return true;
  }

  /** Open sockets (with `tag`) whose token has not expired; expired ones are closed with 4401 here. */
  private sockets(tag?: string): WebSocket[] {
    return liveSockets(tag === undefined ? this.ctx.getWebSockets() : this.ctx.getWebSockets(tag));
  }
}
