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
  type MediaInfo,
  type Message,
  type Outcome,
  type ReceiptKind,
  type Role,
  type SendInput,
  type ConversationServerFrame,
  type DeviceCallFrame,
  type Presence,
  type PresenceFrame,
  type TypingFrame,
  errorFrame,
  serialize,
} from "../protocol";
import { limits } from "../shared/config";
import { newId } from "../shared/ids";
import { inboxStub } from "../shared/stubs";
import { CallSignals, RING_TIMEOUT_MS } from "./calls";
import { takeFrom, type Bucket } from "./rate-limit";
import { ConversationStore, CONVERSATION_SCHEMA, type MemberRow } from "./conversation-store";
import { MlsStore, type CommitFacts } from "./mls-store";
import { MediaLedger, type BeginSpec, type Completion, type PartTarget } from "./media";
import { deviceIdentity } from "../mls/adapter";
import { directory, forgetMember, liveDevicesOf, recordConversation, recordMembers, unknownUsers } from "./directory";
import { AlarmScheduler } from "./scheduler";
import { FanOut } from "./fanout";
import { HistoryTiers, pageRange } from "./history-tiers";
import { applyChange, type MessageChange } from "./message-changes";
import { SendLeases } from "./send-leases";
import { PresenceWatch } from "./presence-watch";
import { parseFrame } from "./frames";
import { SocketHost } from "./socket-host";
import { ConversationPrivacy, historyFloor, visibleMessages, visiblePage } from "./conversation-privacy";
import { AudienceCache, maySeePresence, unknownFrame } from "./presence-audience";
import { blocksBetween, recordContact, refusedGroupAdds } from "./privacy";
import type { History } from "../protocol/privacy";
import { answerClose, closeSocket, firstExpiry, json, liveSockets, type SocketIdentity } from "./sockets";
import { migrate } from "./migrate";
import type { Caller } from "../shared/caller";

const ringTimeoutMs = (env: Env) => {
  const seconds = Number(env.CALL_RING_TIMEOUT_SECONDS);
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
  /** Section 17; default "since_join". */
  history?: History;
}

export class Conversation extends DurableObject<Env> {
  private readonly store: ConversationStore;
  private readonly fanout: FanOut;
  private readonly presence: PresenceWatch;
  private readonly calls: CallSignals;
  private readonly mls: MlsStore;
  private readonly tiers: HistoryTiers;
  /** Section 9; `this.media.deleteMediaOfMessage(seq)` erases a deleted message's media (section 13). */
  private readonly media: MediaLedger;
  private readonly privacy: ConversationPrivacy;
  private readonly audience: AudienceCache;
  private readonly limits = limits(this.env);
  private readonly host = new SocketHost<SocketState, ConversationServerFrame>(this.ctx, { isRevoked: (deviceId) => this.store.isRevoked(deviceId) });
  /** The object's one alarm: fan-out, typing, token expiry, calls, uploads and archive moves. */
  private readonly alarms = new AlarmScheduler(this.ctx.storage);
  private readonly sendTokens = new SendLeases(this.limits.sendRatePerMinute, (userId, want, giveBack) =>
    inboxStub(this.env, userId).leaseSendTokens(want, giveBack),
  );

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new ConversationStore(ctx.storage.sql);
    this.fanout = new FanOut(env, this.store, this.alarms);
    this.presence = new PresenceWatch(ctx.storage.sql, env);
    this.mls = new MlsStore(ctx.storage.sql);
    this.tiers = new HistoryTiers(ctx, env.MEDIA, this.store, { hot: this.limits.hotMessages, segment: this.limits.historySegmentMessages });
    this.media = new MediaLedger(ctx.storage.sql, {
      conversationId: () => this.store.info()!.id,
      bucket: env.MEDIA,
      ttlMs: this.limits.mediaUploadTtlSeconds * 1000,
      wakeAt: (at) => this.alarms.wakeAt(at),
    });
    this.privacy = new ConversationPrivacy(ctx.storage.sql);
    this.audience = new AudienceCache(env.DB);
    this.calls = new CallSignals(ctx.storage, {
      conversationId: () => this.store.info()!.id,
      activeMembers: () => this.store.activeMembers().map((m) => m.user_id),
      sockets: (tag) => this.sockets(tag),
      socketIdentity: (ws) => this.host.attachment(ws),
      ringDevices: (userIds, frame, exceptDevice) => this.ringDevices(userIds, frame, exceptDevice),
      storeCallEvent: (caller, callId, content) => this.storeCallEvent(caller, callId, content),
      wakeAt: (at) => this.alarms.wakeAt(at),
    }, ringTimeoutMs(env));
    this.registerAlarmTasks();
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
    if (spec.type === "group") {
      const refused = await refusedGroupAdds(this.env.DB, spec.creator, others);
      if (refused.length) return fail("forbidden", `${refused[0]} does not accept being added to groups by you`);
    }
    const blocks = spec.type === "direct" ? await blocksBetween(this.env.DB, spec.creator, others[0]!) : [];

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
      const history = spec.type === "group" ? (spec.history ?? "since_join") : "since_join";
      this.store.createInfo({ id: spec.conversationId, type: spec.type, name: spec.name, created_by: spec.creator, created_at: now, encryption, history });
      for (const m of members) this.store.upsertMember(m.userId, m.role, now);
      this.store.appendFeed({ type: "conversation", conversation: this.store.snapshot() });
      if (spec.type === "direct") {
        // The recipient has not sent here yet, so the creator is not their contact: a request.
        this.store.appendFeed({ type: "list_flags", conversation_id: spec.conversationId, request: true }, others[0]!);
        for (const b of blocks) this.blockNow(b.blocker, b.blocked, true);
      }
    });
    await this.fanout.kick();
    return ok(this.store.snapshot(), true);
  }

  /** The conversation as its members see it. */
  /** From a member's inbox, as one of their devices connects: send them what fan-out held back (objects/fanout.ts). */
  async flushTo(userId: string): Promise<void> {
    if (!this.store.exists()) return;
    await this.fanout.flushFor(userId);
  }

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
    const refused = await refusedGroupAdds(this.env.DB, caller.userId, fresh);
    if (refused.length) return fail("forbidden", `${refused[0]} does not accept being added to groups by you`);
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
    const floor = historyFloor(this.store.info()!.history, this.store.activeMember(caller.userId)!);
    const lastSeq = this.store.info()!.last_seq;
    const { lo, hi } = pageRange(visiblePage(q, floor), lastSeq);
    const messages = visibleMessages(await this.tiers.range(lo, hi), floor);
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
    await this.broadcastPresence(this.presence.update(userId, presence));
    return true;
  }

  /**
   * A member's last_seen setting, blocks or contacts changed (their inbox says so): each
   * viewer who may now see them is told their presence, each who no longer may, "unknown".
   */
  async presencePolicyChanged(userId: string): Promise<void> {
    if (!this.store.info() || !this.store.activeMember(userId)) return;
    const before = this.audience.peek();
    this.audience.invalidate();
    const [frame] = this.presence.frames([userId]);
    if (!frame || this.sockets().length === 0) return;
    const after = await this.audience.get(this.memberIds());
    for (const ws of this.sockets()) {
      const viewer = this.host.attachment(ws).userId;
      const now = maySeePresence(after, userId, viewer);
      const was = before ? maySeePresence(before, userId, viewer) : !now;
      if (now && !was) this.host.send(ws, frame);
      else if (!now && was) this.host.send(ws, unknownFrame(userId));
    }
  }

  /**
   * Section 17, from the Worker: `blocker` blocked (or unblocked) `blocked`. In a direct
   * conversation the blocked one's sends are refused and it leaves the blocker's list.
   */
  async blockChanged(blocker: string, blocked: string, on: boolean): Promise<void> {
    const info = this.store.info();
    if (!info || info.type !== "direct" || !this.store.member(blocked) || !this.store.member(blocker)) return;
    this.ctx.storage.transactionSync(() => this.blockNow(blocker, blocked, on));
    await this.fanout.kick();
  }

  private blockNow(blocker: string, blocked: string, on: boolean): void {
    this.privacy.setBlocked(blocked, on);
    this.store.appendFeed({ type: "list_flags", conversation_id: this.store.info()!.id, hidden: on }, blocker);
  }

  private memberIds(): string[] {
    return this.store.activeMembers().map((m) => m.user_id);
  }

  /** A presence frame to the sockets of those who may see it. */
  private async broadcastPresence(frame: PresenceFrame): Promise<void> {
    const audience = await this.audience.get(this.memberIds());
    const text = serialize(frame);
    for (const ws of this.sockets()) {
      if (maySeePresence(audience, frame.user_id, this.host.attachment(ws).userId)) this.host.send(ws, text);
    }
  }

  /** Refuses the device from now on and closes its sockets here with 4401. */
  async revokeDevice(deviceId: string): Promise<void> {
    if (!this.store.info()) return;
    this.store.revokeDevice(deviceId);
    for (const ws of this.ctx.getWebSockets(`d:${deviceId}`)) closeSocket(ws, CLOSE_UNAUTHORIZED, "device revoked");
  }

  /** `member`: the sender's row when the caller has just read it (a socket frame), so it is not read again. */
  private async send(caller: Caller, input: SendInput, member = this.store.exists() ? this.store.activeMember(caller.userId) : null): Promise<Outcome<Message>> {
    if (!member) return this.checkMember(caller.userId) ?? fail("forbidden", "not a member of this conversation");
    if (member.blocked) return fail("forbidden", "the other member of this conversation blocked you");
    if (input.content.length > this.limits.maxContentChars) {
      return fail("too_large", `content is longer than ${this.limits.maxContentChars} characters`);
    }
    if (input.kind === "media" && !input.media_id) return fail("invalid_request", "media_id: required for kind media");
    if (this.store.encryption() === "mls" && input.kind !== "encrypted") {
      return fail("invalid_request", 'kind: an "mls" conversation takes only kind "encrypted" (and commits through …/mls/commits)');
    }
    const original = await this.tiers.byClientId(caller.userId, input.client_message_id);
    if (original) return ok(original, false);
    const early = input.media_id === undefined ? null : this.media.refusal(input.media_id);
    if (early) return early;
    const token = await this.sendTokens.take(caller.userId);
    if (!token.ok) return fail("rate_limited", "too many messages; slow down", token.retryAfterSeconds);
    const contact = member.sent ? false : await this.firstSendInDirect(caller.userId);
    // The same message may have been stored while the bucket (or D1) answered. This check and
    // the append run in one synchronous stretch: even an `await` of a settled promise would let
    // a concurrent send of this client_message_id (resumed by the same lease) run in between.
    const raced = this.store.messageByClientId(caller.userId, input.client_message_id);
    if (raced) return ok(raced, false);
    const archivedSeq = this.store.archivedSeqByClientId(caller.userId, input.client_message_id);
    if (archivedSeq !== null) {
      const archived = await this.tiers.messageAt(archivedSeq);
      if (archived) return ok(archived, false);
    }
    // Checked after the last await, so no commit can slip in between the check and the append.
    const stale = this.store.encryption() === "mls" ? this.mls.checkApplicationMessage(this.store.id(), input.content) : null;
    if (stale) return stale;
    // Judged again with no await before the write: the media may have been taken or swept meanwhile.
    const refused = input.media_id === undefined ? null : this.media.refusal(input.media_id);
    if (refused) return refused;
    const message = this.ctx.storage.transactionSync(() => {
      if (contact) this.sentFirst(caller.userId);
      const stored = this.store.appendMessage({
        message_id: newId("m"),
        sender_id: caller.userId,
        sender_device_id: caller.deviceId,
        client_message_id: input.client_message_id,
        kind: input.kind,
        content: input.content,
        ...(input.media_id ? { media_id: input.media_id } : {}),
        created_at: Date.now(),
      });
      if (input.media_id !== undefined) this.media.attach(input.media_id, stored.seq);
      return stored;
    });
    await this.fanout.kick();
    return ok(message, true);
  }

  // ---- edits, deletes and reactions (section 13) ---------------------------------

  /**
   * Changes one message, hot or archived; the result reaches the conversation sockets and,
   * through the feed, every member's device sockets as `message_updated`. Answers the
   * message as it now is (`created: false` when nothing changed).
   */
  async changeMessage(caller: Caller, seq: number, change: MessageChange): Promise<Outcome<Message>> {
    const denied = this.checkMember(caller.userId);
    if (denied) return denied;
    const base = seq >= 1 && seq <= this.store.info()!.last_seq ? await this.tiers.messageAt(seq) : null;
    if (!base) return fail("not_found", `no message ${seq} in this conversation`);
    const judge = () => {
      // Not hot and not in the overlay means archived and unchanged since, i.e. `base`.
      const current = this.store.currentMessage(seq) ?? base;
      const member = this.store.activeMember(caller.userId);
      const result: Outcome<Message> = !member
        ? fail("forbidden", "not a member of this conversation")
        : applyChange(current, change, {
            userId: caller.userId,
            role: member.role,
            conversationType: this.store.info()!.type,
            now: Date.now(),
            editWindowSeconds: this.limits.editWindowSeconds,
            maxContentChars: this.limits.maxContentChars,
          });
      return { current, result };
    };
    const first = judge();
    if (!first.result.ok || !first.result.created) return first.result;
    // A change costs a fan-out like a message does: it takes a token from the user's send bucket.
    const token = await this.sendTokens.take(caller.userId);
    if (!token.ok) return fail("rate_limited", "too many messages and changes; slow down", token.retryAfterSeconds);
    // Judged again, synchronously up to the write: another change may have come in meanwhile.
    const { current, result } = judge();
    if (!result.ok || !result.created) return result;
    const next = result.value;
    const archived = !this.store.isHot(seq);
    this.ctx.storage.transactionSync(() => {
      this.store.saveChanged(next);
      if (next.deleted) {
        this.store.eraseFromFeed(next);
        if (archived) this.tiers.owesScrubFor(seq);
      }
      this.store.appendUpdateFeed(seq);
    });
    this.broadcast({ type: "message_updated", message: next });
    await this.fanout.kick();
    if (next.deleted && current.media_id) await this.media.deleteMediaOfMessage(seq);
    if (next.deleted) {
      // The overlay already hides the content; this erases it from the segment, or the alarm retries.
      const erase = archived ? this.tiers.scrubPending() : this.tiers.forgetAttemptFor(seq);
      await erase.catch(async (err) => {
        console.error("erasing a deleted message from R2 failed", err);
        if (archived) await this.alarms.wakeAt(Date.now() + 30_000);
      });
    }
    return result;
  }

  /**
   * Before a member's first message in a direct conversation: their peer becomes their
   * contact in D1 (section 17). Answers whether that was recorded; if D1 failed, the next
   * message tries again. After it, sends cost nothing more (the member row says so).
   */
  private async firstSendInDirect(userId: string): Promise<boolean> {
    if (this.store.info()!.type !== "direct") return false;
    const peer = this.memberIds().find((id) => id !== userId);
    if (!peer) return false;
    try {
      await recordContact(this.env.DB, userId, peer);
    } catch (err) {
      console.warn("could not record a contact; will try on the next message", err);
      return false;
    }
    // Who sees this user's presence may have changed (last_seen "contacts").
    const inbox = inboxStub(this.env, userId);
    this.ctx.waitUntil(inbox.privacyChanged(userId).catch(() => undefined));
    return true;
  }

  /** The member has sent here: a request to them is one no longer. */
  private sentFirst(userId: string): void {
    this.privacy.markSent(userId);
    const info = this.store.info()!;
    if (info.created_by !== userId) this.store.appendFeed({ type: "list_flags", conversation_id: info.id, request: false }, userId);
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
    const repeat = await this.commitRepeat(caller, input);
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

    const raced = await this.commitRepeat(caller, input);
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
  private async commitRepeat(caller: Caller, input: CommitInput): Promise<Outcome<{ epoch: number; seq: number }> | null> {
    const original = await this.tiers.byClientId(caller.userId, input.client_message_id);
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

  // ---- media (section 9): the Worker streams the bytes to R2, objects/media.ts keeps the records ----

  async mediaBegin(caller: Caller, spec: BeginSpec): Promise<Outcome<{ key: string; r2UploadId: string | null }>> {
    return this.checkMember(caller.userId) ?? this.media.begin(caller, spec);
  }

  async mediaUploaded(caller: Caller, mediaId: string, sha256: string): Promise<Outcome<MediaInfo>> {
    return this.checkMember(caller.userId) ?? this.media.uploaded(caller, mediaId, sha256);
  }

  async mediaDiscard(caller: Caller, mediaId: string): Promise<void> {
    if (this.store.info()) await this.media.discard(caller, mediaId);
  }

  async mediaPartTarget(caller: Caller, uploadId: string, part: number): Promise<Outcome<PartTarget>> {
    return this.checkMember(caller.userId) ?? this.media.partTarget(caller, uploadId, part);
  }

  async mediaPartStored(caller: Caller, uploadId: string, part: number, etag: string): Promise<Outcome<null>> {
    return this.checkMember(caller.userId) ?? this.media.partStored(caller, uploadId, part, etag);
  }

  async mediaCompletion(caller: Caller, uploadId: string): Promise<Outcome<Completion>> {
    return this.checkMember(caller.userId) ?? this.media.completion(caller, uploadId);
  }

  async mediaCompleted(caller: Caller, uploadId: string, sha256: string): Promise<Outcome<MediaInfo>> {
    return this.checkMember(caller.userId) ?? this.media.completed(caller, uploadId, sha256);
  }

  async mediaAbort(caller: Caller, uploadId: string): Promise<Outcome<null>> {
    return this.checkMember(caller.userId) ?? this.media.abort(caller, uploadId);
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
    const caller = this.host.admit(request, {
      refuse: (c) => {
        const denied = this.checkMember(c.userId);
        return denied ? json({ error: denied.error }, denied.error.code === "not_found" ? 404 : 403) : null;
      },
      open: (c) => this.ctx.getWebSockets(c.userId).length,
      max: this.limits.maxSocketsPerUser,
      limitMessage: `at most ${this.limits.maxSocketsPerUser} sockets per user on a conversation`,
    });
    if (caller instanceof Response) return caller;
    const socketId = crypto.randomUUID();
    const inbox = inboxStub(this.env, caller.userId);
    if (!(await inbox.claimConversationSocket(caller.userId, this.store.info()!.id, socketId, this.limits.maxConversationSocketsPerUser))) {
      const message = `at most ${this.limits.maxConversationSocketsPerUser} conversation sockets per user`;
      return json({ error: { code: "limit_exceeded", message } }, 422);
    }

    const pair = new WebSocketPair();
    const server = pair[1];
    this.host.accept(server, [caller.userId, `d:${caller.deviceId}`], { ...caller, typingUntil: 0, socketId });
    // Closed with 4401 by the alarm when the token expires, even if it never sends a frame.
    await this.alarms.wakeAt(caller.exp * 1000);
    this.ctx.waitUntil(this.greet(server));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /** Tells a socket that just opened every member's presence, watching them first if need be. */
  private async greet(ws: WebSocket): Promise<void> {
    const members = this.store.activeMembers().map((m) => m.user_id);
    await this.presence.ensure(this.store.info()!.id, members);
    const audience = await this.audience.get(members);
    if (liveSockets([ws]).length === 0) return;
    const viewer = this.host.attachment(ws).userId;
    for (const frame of this.presence.frames(members)) if (maySeePresence(audience, frame.user_id, viewer)) this.host.send(ws, frame);
  }

  private async announceNewMembers(): Promise<void> {
    const members = this.store.activeMembers().map((m) => m.user_id);
    for (const frame of await this.presence.ensure(this.store.info()!.id, members)) await this.broadcastPresence(frame);
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    await this.host.onMessage(ws, data, {
      sender: (state) => this.store.activeMember(state.userId),
      refusal: { code: CLOSE_FORBIDDEN, reason: "not a member" },
      parse: (raw) => parseFrame(raw, this.limits.maxBodyBytes),
      handle: (state, frame, member) => this.onFrame(ws, state, frame, member),
    });
  }

  private async onFrame(ws: WebSocket, state: SocketState, frame: ClientFrame, member: MemberRow): Promise<void> {
    switch (frame.type) {
      case "send": {
        const { type: _, ...input } = frame;
        const result = await this.send(state, input, member);
        if (!result.ok) return this.host.send(ws, errorFrame(result.error, frame.client_message_id));
        this.host.send(ws, { type: "sent", client_message_id: frame.client_message_id, message: result.value });
        if (result.created) this.broadcast({ type: "message", message: result.value });
        return;
      }
      case "delivered":
      case "read": {
        const result = await this.mark(state, frame.type, frame.up_to_seq);
        if (!result.ok) this.host.send(ws, errorFrame(result.error, null));
        return;
      }
      case "typing": {
        if (this.overRate(ws, state, "typing", this.limits.typingFramesPerMinute)) return;
        const typingUntil = frame.state === "start" ? Date.now() + TYPING_TTL_MS : 0;
        this.host.setAttachment(ws, { ...state, typingUntil });
        this.broadcastTyping(ws, state, frame.state, typingUntil);
        if (typingUntil) await this.alarms.wakeAt(typingUntil);
        return;
      }
      case "ping":
        // Only reached when the frame's text differs from the auto-response's, e.g. extra spaces.
        return this.host.send(ws, { type: "pong" });
      case "call": {
        if (this.overRate(ws, state, "call", this.limits.callFramesPerMinute)) return;
        const refused = await this.calls.onFrame(ws, state, frame);
        if (refused) this.host.send(ws, errorFrame(refused, null));
        return;
      }
      case "edit":
      case "delete":
      case "react": {
        const change: MessageChange =
          frame.type === "edit" ? { kind: "edit", content: frame.content } : frame.type === "delete" ? { kind: "delete" } : { kind: "react", reaction: frame.reaction };
        const result = await this.changeMessage(state, frame.seq, change);
        if (!result.ok) this.host.send(ws, errorFrame(result.error, frame.client_message_id ?? null));
        return;
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    const state = this.host.attachmentIfAny(ws);
    if (state?.typingUntil && state.typingUntil > Date.now()) this.broadcastTyping(ws, state, "stop", 0);
    answerClose(ws, code);
    this.released(state);
    // Nobody left to tell: the cache would go stale, so the next socket re-subscribes.
    if (!this.ctx.getWebSockets().some((s) => s !== ws && s.readyState === WebSocket.OPEN)) this.presence.forget();
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    closeSocket(ws, 1011, "error");
    this.released(this.host.attachmentIfAny(ws));
  }

  /** Tells the user's inbox that one of their conversation sockets is gone. */
  private released(state: SocketState | null): void {
    if (!state?.socketId) return;
    const inbox = inboxStub(this.env, state.userId);
    this.ctx.waitUntil(inbox.releaseConversationSocket(state.socketId).catch(() => undefined));
  }

  /** The ids of this user's open sockets here (their inbox checks its count against them). */
  async openSocketIds(userId: string): Promise<string[]> {
    return this.ctx
      .getWebSockets(userId)
      .filter((ws) => ws.readyState === WebSocket.OPEN)
      .map((ws) => this.host.attachment(ws).socketId)
      .filter((id): id is string => id !== undefined);
  }

  /** Every part's due work (see `registerAlarmTasks`); an object that holds no conversation has none. */
  override async alarm(): Promise<void> {
    if (!this.store.info()) return;
    await this.alarms.fire();
  }

  /** In this order: expired sockets and typing first, the fan-out drain, and only then archive moves. */
  private registerAlarmTasks(): void {
    this.alarms.register("sockets", (now) => {
      for (const ws of this.sockets()) {
        const state = this.host.attachment(ws);
        if (state.typingUntil && state.typingUntil <= now) {
          this.host.setAttachment(ws, { ...state, typingUntil: 0 });
          this.broadcastTyping(ws, state, "stop", 0);
        }
      }
      const next = [this.nextTypingExpiry(), firstExpiry(this.ctx.getWebSockets())].filter((t): t is number => t !== null);
      return next.length ? Math.min(...next) : null;
    });
    this.alarms.register("calls", (now) => this.calls.onAlarm(now));
    this.alarms.register("media", (now) => this.media.sweep(now));
    this.alarms.register("fanout", () => this.fanout.onAlarm());
    // After the drain: only messages no inbox is still owed an event about may move to R2.
    this.alarms.register("tiers", () => this.tiers.onAlarm());
  }

  /** A call frame to members' device sockets, through their inboxes (which push a ring to devices without one). */
  private async ringDevices(userIds: string[], frame: DeviceCallFrame, exceptDevice?: string): Promise<void> {
    const text = serialize(frame);
    await Promise.allSettled(userIds.map((u) => inboxStub(this.env, u).callFrame(u, text, exceptDevice ?? null)));
  }

  /** One `kind:"call"` event per call, in the conversation's order (idempotent by call id). */
  private async storeCallEvent(caller: Caller, callId: string, content: string): Promise<void> {
    const clientMessageId = `call:${callId}`;
    if (await this.tiers.byClientId(caller.userId, clientMessageId)) return;
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
      const until = this.host.attachment(ws).typingUntil;
      if (until && (next === null || until < next)) next = until;
    }
    return next;
  }

  private broadcastTyping(from: WebSocket, who: Caller, state: "start" | "stop", expiresAt: number): void {
    const frame = serialize<TypingFrame>({
      type: "typing",
      user_id: who.userId,
      device_id: who.deviceId,
      state,
      ...(expiresAt ? { expires_at: expiresAt } : {}),
    });
    for (const ws of this.sockets()) if (ws !== from) this.host.send(ws, frame);
  }

  private broadcast(frame: ConversationServerFrame): void {
    const text = serialize(frame);
    for (const ws of this.sockets()) this.host.send(ws, text);
  }

  /**
   * Takes a token from the socket's own bucket for this kind of frame (kept in its
   * attachment, so hibernation does not refill it). Over the limit, the frame is dropped
   * and the socket told `rate_limited`; `state` is updated in place for the caller.
   */
  private overRate(ws: WebSocket, state: SocketState, kind: "typing" | "call", perMinute: number): boolean {
    const { result, bucket } = takeFrom(state.buckets?.[kind], perMinute);
    state.buckets = { ...state.buckets, [kind]: bucket };
    this.host.setAttachment(ws, state);
    if (result.ok) return false;
    const message = `too many ${kind} frames on this socket; dropped`;
    this.host.send(ws, errorFrame({ code: "rate_limited", message, retryAfter: result.retryAfterSeconds }, null));
    return true;
  }

  /** Open sockets (with `tag`) whose token has not expired; expired ones are closed with 4401 here. */
  private sockets(tag?: string): WebSocket[] {
    return liveSockets(tag === undefined ? this.ctx.getWebSockets() : this.ctx.getWebSockets(tag));
  }
}
