/**
 * The MLS layer of the SDK (CONTRACT.md section 10): every device is one leaf of each
 * encrypted conversation's group, whose id is the conversation id.
 *
 * - The group state of each conversation is kept in storage (`mls.group.<id>`), next to
 *   the plaintexts this device has read or sent there (`mls.text.<id>`): MLS deletes a
 *   message key once used, and a device can never decrypt its own PrivateMessages, so
 *   history is shown from that cache. Both are written together, before the cursor that
 *   moved them on (or in the same write).
 * - The device stream hands messages out in seq order per conversation: commits
 *   (`mls_commit`) are applied in that order (ones made in an epoch already left behind,
 *   this device's own included, are skipped), PrivateMessages decrypted.
 * - Commits this device makes (create, add, remove) are sent at the group's epoch; a 409
 *   means another commit won: it is fetched from history and applied, and the change is
 *   made again if still needed.
 * - One lock per conversation orders everything that touches a group state.
 */
import {
  commitChanges,
  commitExternalJoin,
  decodeGroupStateText,
  encodeGroupStateText,
  encryptApplication,
  groupEpoch,
  groupFingerprints,
  groupLeaves,
  isActiveMember,
  joinFromWelcome,
  joinableTree,
  messageEpoch,
  newGroup,
  newKeyPackage,
  processIncoming,
  readGroupInfo,
  welcomeRecipients,
  type DeviceRef,
  type MlsGroupState,
} from "../../../mls/adapter";
import type { Encoded } from "../codec";
import type { SealedMediaContent } from "../media";
import { asChatError, ChatError } from "../errors";
import type { ChatStorage } from "../storage";
import type { ChatMessage, Message } from "../types";
import { KEY_PACKAGE_TARGET, KeyStore, type Request } from "./keys";

const groupKey = (conversationId: string) => `mls.group.${conversationId}`;
const textKey = (conversationId: string) => `mls.text.${conversationId}`;

interface StoredGroup {
  state: string;
  epoch: number;
  /** The seq of the last commit applied (0: none): history after it holds the next ones. */
  seq: number;
}

interface Group {
  state: MlsGroupState;
  epoch: number;
  seq: number;
}

interface TextCache {
  /** Plaintexts by seq: what this device decrypted. */
  seq: Record<string, string>;
  /** Plaintexts of this device's own sends, by client_message_id. */
  cmid: Record<string, string>;
}

/** What a PrivateMessage carries: JSON, a text or a media message's file key and details. */
type Payload = { kind: "text"; text: string } | { kind: "media"; media: SealedMediaContent };

/**
 * The cache holds strings: a text as is, a media message's details as JSON behind this mark
 * (a text cannot start with NUL... it can, but not this whole prefix and valid JSON after it).
 */
const MEDIA_MARK = "\u0000edge-chat-media:";
const cachedForm = (payload: Payload): string => (payload.kind === "text" ? payload.text : MEDIA_MARK + JSON.stringify(payload.media));
function withCached(message: ChatMessage, known: string): ChatMessage {
  if (!known.startsWith(MEDIA_MARK)) return { ...message, text: known };
  const media = JSON.parse(known.slice(MEDIA_MARK.length)) as SealedMediaContent;
  return { ...message, kind: "encrypted", media, ...(media.caption ? { text: media.caption } : {}) };
}
const isPayload = (p: Partial<Payload>): p is Payload =>
  (p.kind === "text" && typeof (p as { text?: unknown }).text === "string") ||
  (p.kind === "media" && typeof (p as { media?: { key?: unknown } }).media?.key === "string");

export interface MlsHooks {
  request: Request;
  /** The highest seq the device stream handed out for a conversation. */
  lastSeq(conversationId: string): number;
  error(err: ChatError): void;
}

interface Conflict {
  epoch?: number;
  pending_removals?: string[];
}

export class MlsLayer {
  private readonly groups = new Map<string, Group | null>();
  private readonly texts = new Map<string, TextCache>();
  private readonly dirty = new Set<string>();
  private keysDirty = false;
  private readonly locks = new Map<string, Promise<unknown>>();
  private refilling: Promise<void> | null = null;
  /** Per message, for the report: encrypt and decrypt times in ms. */
  readonly timings = { encrypt: [] as number[], decrypt: [] as number[] };

  private constructor(
    private readonly storage: ChatStorage,
    private readonly device: DeviceRef,
    private readonly keys: KeyStore,
    private readonly hooks: MlsHooks,
  ) {}

  static async load(storage: ChatStorage, device: DeviceRef, hooks: MlsHooks): Promise<MlsLayer> {
    return new MlsLayer(storage, device, await KeyStore.load(storage, device), hooks);
  }

  // ---- key packages ------------------------------------------------------------

  /**
   * At sign-in: a first batch (and a last-resort package) for a new device; otherwise
   * whatever an earlier run stored but could not upload. A failed upload is retried on
   * the next `key_packages_low` or start.
   */
  async start(): Promise<void> {
    try {
      if (!this.keys.hasLastResort) await this.keys.replenish(this.device, KEY_PACKAGE_TARGET, this.hooks.request);
      else await this.keys.upload(this.hooks.request);
    } catch (err) {
      this.hooks.error(asChatError(err));
    }
  }

  /** The device event `key_packages_low`: back up to the target. */
  onKeyPackagesLow(count: number): Promise<void> {
    this.refilling ??= (async () => {
      try {
        await this.keys.replenish(this.device, Math.max(0, KEY_PACKAGE_TARGET - count), this.hooks.request);
      } catch (err) {
        this.hooks.error(asChatError(err));
      } finally {
        this.refilling = null;
      }
    })();
    return this.refilling;
  }

  // ---- storage -------------------------------------------------------------------

  private async group(conversationId: string): Promise<Group | null> {
    if (!this.groups.has(conversationId)) {
      const stored = await this.storage.read<StoredGroup>(groupKey(conversationId));
      this.groups.set(conversationId, stored ? { state: decodeGroupStateText(stored.state), epoch: stored.epoch, seq: stored.seq } : null);
    }
    return this.groups.get(conversationId) ?? null;
  }

  private async text(conversationId: string): Promise<TextCache> {
    let cache = this.texts.get(conversationId);
    if (!cache) {
      cache = (await this.storage.read<TextCache>(textKey(conversationId))) ?? { seq: {}, cmid: {} };
      this.texts.set(conversationId, cache);
    }
    return cache;
  }

  /** Whether this device is a leaf of the conversation's group. */
  async hasGroup(conversationId: string): Promise<boolean> {
    return (await this.group(conversationId)) !== null;
  }

  /**
   * After the Delivery Service refused a message made in a past epoch (409 with `epoch`):
   * the commits since are applied from history. Resolves with the epoch this device is at.
   */
  followTo(conversationId: string): Promise<number | null> {
    return this.locked(conversationId, async () => {
      await this.catchUp(conversationId);
      return (await this.group(conversationId))?.epoch ?? null;
    });
  }

  /** The key fingerprints of the conversation's group as this device holds it (null: not in it). */
  async fingerprints(conversationId: string): Promise<{ group: string; devices: { user_id: string; device_id: string; fingerprint: string }[] } | null> {
    const g = await this.group(conversationId);
    if (!g) return null;
    const { leaves, group } = await groupFingerprints(g.state);
    const devices = leaves.flatMap((l) => (l.device ? [{ user_id: l.device.userId, device_id: l.device.deviceId, fingerprint: l.fingerprint }] : []));
    return { group, devices };
  }

  /**
   * The storage entries changed since the last call (group states, plaintexts, used key
   * packages), for the write that also moves the cursor on.
   */
  takeWrites(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const id of this.dirty) Object.assign(out, this.entries(id));
    this.dirty.clear();
    if (this.keysDirty) Object.assign(out, this.keys.entry());
    this.keysDirty = false;
    return out;
  }

  private entries(conversationId: string): Record<string, unknown> {
    const g = this.groups.get(conversationId);
    const out: Record<string, unknown> = {};
    if (g) out[groupKey(conversationId)] = { state: encodeGroupStateText(g.state), epoch: g.epoch, seq: g.seq } satisfies StoredGroup;
    const t = this.texts.get(conversationId);
    if (t) out[textKey(conversationId)] = t;
    return out;
  }

  /** Stores one conversation's state now (with the key store when it changed too). */
  private async flush(conversationId: string): Promise<void> {
    const out = this.entries(conversationId);
    this.dirty.delete(conversationId);
    if (this.keysDirty) Object.assign(out, this.keys.entry());
    this.keysDirty = false;
    await this.storage.write(out);
  }

  /** Runs `task` after every earlier task on the same conversation. */
  private locked<T>(conversationId: string, task: () => Promise<T>): Promise<T> {
    const before = this.locks.get(conversationId) ?? Promise.resolve();
    const run = before.then(task, task);
    const tail = run.catch(() => undefined);
    this.locks.set(conversationId, tail);
    void tail.then(() => {
      if (this.locks.get(conversationId) === tail) this.locks.delete(conversationId);
    });
    return run;
  }

  // ---- application messages ----------------------------------------------------------

  /** The outbox's encoder: a PrivateMessage, the state moved on and stored before it leaves. */
  encodeText(conversationId: string, text: string, clientMessageId: string): Promise<Encoded> {
    return this.encodePayload(conversationId, { kind: "text", text }, clientMessageId);
  }

  /** A media message: the file key, hash, type and name travel inside the PrivateMessage. */
  encodeMedia(conversationId: string, media: SealedMediaContent, clientMessageId: string): Promise<Encoded> {
    return this.encodePayload(conversationId, { kind: "media", media }, clientMessageId);
  }

  private encodePayload(conversationId: string, payload: Payload, clientMessageId: string): Promise<Encoded> {
    return this.locked(conversationId, async () => {
      const g = await this.group(conversationId);
      if (!g) throw new ChatError("network", `not yet a member of the MLS group of ${conversationId} (no welcome yet)`);
      const started = performance.now();
      const { message, state } = await encryptApplication(g.state, new TextEncoder().encode(JSON.stringify(payload)));
      this.timings.encrypt.push(performance.now() - started);
      g.state = state;
      (await this.text(conversationId)).cmid[clientMessageId] = cachedForm(payload);
      await this.flush(conversationId);
      return { kind: "encrypted", content: message };
    });
  }

  /**
   * A message of an encrypted conversation. `live` (the device stream, in seq order) may
   * move the group on: commits are applied, PrivateMessages decrypted. Otherwise (history,
   * an ack) only what this device already read or sent is filled in.
   */
  async decode(message: ChatMessage, live: boolean): Promise<ChatMessage> {
    const conv = message.conversation_id;
    if (!live) return this.fromCache(message);
    return this.locked(conv, async () => {
      if (message.kind === "mls_commit") {
        await this.applyCommit(conv, message);
        return message;
      }
      if (message.kind !== "encrypted" || message.deleted) return message;
      const cache = await this.text(conv);
      const known = cache.seq[message.seq] ?? (message.sender_device_id === this.device.deviceId ? cache.cmid[message.client_message_id] : undefined);
      if (known !== undefined) {
        if (cache.seq[message.seq] === undefined) {
          cache.seq[message.seq] = known;
          this.dirty.add(conv);
        }
        return withCached(message, known);
      }
      const g = await this.group(conv);
      if (!g || message.sender_device_id === this.device.deviceId) return message;
      try {
        const payload = await this.decrypt(conv, g, message.content);
        if (!payload) return message;
        cache.seq[message.seq] = cachedForm(payload);
        return withCached(message, cache.seq[message.seq]!);
      } catch {
        // An epoch this device has no keys for (before it joined, or after it was removed).
        return message;
      }
    });
  }

  /**
   * `message_updated` of an encrypted message (section 13): an edit's new PrivateMessage is
   * decrypted (once: a replay finds it cached), a delete forgets the plaintext here too, and a
   * reaction change keeps what is cached.
   */
  decodeUpdated(message: ChatMessage): Promise<ChatMessage> {
    const conv = message.conversation_id;
    return this.locked(conv, async () => {
      if (message.kind !== "encrypted") return message;
      const cache = await this.text(conv);
      if (message.deleted) {
        if (cache.seq[message.seq] !== undefined) {
          delete cache.seq[message.seq];
          this.dirty.add(conv);
        }
        return message;
      }
      const g = await this.group(conv);
      if (g && message.edited_at !== undefined) {
        try {
          const payload = await this.decrypt(conv, g, message.content);
          if (payload) cache.seq[message.seq] = cachedForm(payload);
        } catch {
          // this device's own edit, or one already read: the cache has it
        }
      }
      const known = cache.seq[message.seq];
      return known === undefined ? message : withCached(message, known);
    });
  }

  /** This device edited a message: what it now says (no device can decrypt its own PrivateMessage). */
  rememberEdit(conversationId: string, seq: number, text: string | undefined): Promise<string | undefined> {
    return this.locked(conversationId, async () => {
      const cache = await this.text(conversationId);
      const before = cache.seq[seq];
      if (text === undefined) delete cache.seq[seq];
      else cache.seq[seq] = text;
      this.dirty.add(conversationId);
      await this.flush(conversationId);
      return before;
    });
  }

  /**
   * Opens a PrivateMessage with the group's state and moves the state on (called under the
   * lock); null for what is not a payload this SDK knows. Throws when it cannot be opened.
   */
  private async decrypt(conv: string, g: Group, content: string): Promise<Payload | null> {
    const started = performance.now();
    const result = await processIncoming(g.state, content);
    this.timings.decrypt.push(performance.now() - started);
    g.state = result.state;
    this.dirty.add(conv);
    if (result.kind !== "application") return null;
    const payload = JSON.parse(new TextDecoder().decode(result.data)) as Partial<Payload>;
    return isPayload(payload) ? payload : null;
  }

  private async fromCache(message: ChatMessage): Promise<ChatMessage> {
    if (message.kind !== "encrypted" || message.deleted) return message;
    const cache = await this.text(message.conversation_id);
    const known = cache.seq[message.seq] ?? (message.sender_device_id === this.device.deviceId ? cache.cmid[message.client_message_id] : undefined);
    return known === undefined ? message : withCached(message, known);
  }

  /** A commit in seq order: applied when made in the group's current epoch. */
  private async applyCommit(conv: string, message: Pick<Message, "seq" | "content">): Promise<void> {
    const g = await this.group(conv);
    if (!g || message.seq <= g.seq) return;
    const epoch = messageEpoch(message.content);
    if (epoch === null || epoch !== g.epoch) return; // an epoch left behind (our own commit, say), or one we cannot follow
    try {
      const result = await processIncoming(g.state, message.content);
      g.state = result.state;
      g.epoch = groupEpoch(result.state);
      g.seq = message.seq;
      if (!isActiveMember(result.state)) this.groups.set(conv, null);
      this.dirty.add(conv);
    } catch (err) {
      this.hooks.error(new ChatError("invalid_request", `MLS commit at seq ${message.seq} of ${conv} could not be applied: ${String(err)}`));
    }
  }

  // ---- welcomes -------------------------------------------------------------------

  /** `mls_welcome` on the device socket: join with the key package it was made for. */
  onWelcome(event: { conversation_id: string; epoch: number; welcome: string }): Promise<void> {
    const conv = event.conversation_id;
    return this.locked(conv, async () => {
      const existing = await this.group(conv);
      if (existing && existing.epoch >= event.epoch) return;
      const found = this.keys.find(welcomeRecipients(event.welcome));
      if (!found) {
        this.hooks.error(new ChatError("not_found", `a welcome to ${conv} for a key package this device does not hold`));
        return;
      }
      try {
        const state = await joinFromWelcome(event.welcome, found.keyPackage);
        this.groups.set(conv, { state, epoch: groupEpoch(state), seq: this.hooks.lastSeq(conv) });
        this.keys.used(found.ref);
        this.keysDirty = true;
        this.dirty.add(conv);
      } catch (err) {
        this.hooks.error(new ChatError("invalid_request", `the welcome to ${conv} could not be joined: ${String(err)}`));
      }
    });
  }

  // ---- a user's later device ------------------------------------------------------------

  /**
   * A conversation this user is in but this device is not (a device signed in after the
   * group was made): the device joins by itself with an external commit from the current
   * group info. It reads only what is sent from its join on. When the group info already
   * holds this device (another member added it) its welcome is on the way and nothing is
   * done, unless `resync`: the welcome cannot come (the replay is over, or this client has
   * no stream), and the commit replaces that leaf.
   */
  joinExternally(conversationId: string, options: { resync?: boolean } = {}): Promise<boolean> {
    return this.locked(conversationId, async () => {
      if (await this.group(conversationId)) return false;
      const path = `/v1/conversations/${encodeURIComponent(conversationId)}/mls`;
      for (let attempt = 0; attempt < 8; attempt++) {
        let info: { epoch: number; group_info: string };
        try {
          info = await this.hooks.request<{ epoch: number; group_info: string }>("GET", `${path}/group-info`);
        } catch (err) {
          if (err instanceof ChatError && err.status === 404) return false; // no commit yet: the creator's welcome will come
          throw err;
        }
        const summary = await readGroupInfo(info.group_info);
        if (!summary.ok) throw new ChatError("invalid_request", `the group info of ${conversationId}: ${summary.reason}`);
        const me = `${this.device.userId}/${this.device.deviceId}`;
        const present = summary.value.leaves.some((l) => l.identity && `${l.identity.userId}/${l.identity.deviceId}` === me);
        if (present && !options.resync) return false;
        const upload = await commitExternalJoin(info.group_info, await newKeyPackage(this.device), present);
        try {
          const accepted = await this.postCommit(conversationId, {
            epoch: info.epoch,
            commit: upload.commit,
            group_info: upload.group_info,
            client_message_id: `c_${globalThis.crypto.randomUUID()}`,
          });
          this.groups.set(conversationId, { state: upload.state, epoch: accepted.epoch, seq: accepted.seq });
          await this.flush(conversationId);
          return true;
        } catch (err) {
          if (!(err instanceof ChatError) || err.status !== 409) throw err;
          // Another commit won this epoch: join from the group info it made.
        }
      }
      throw new ChatError("conflict", `could not join the MLS group of ${conversationId}: other commits kept winning`, 409);
    });
  }

  // ---- commits this device makes --------------------------------------------------

  /** A new conversation: its group with this device alone, then every member's devices added. */
  async createGroup(conversationId: string, memberIds: string[]): Promise<void> {
    await this.locked(conversationId, async () => {
      if (await this.group(conversationId)) return;
      const own = await newKeyPackage(this.device);
      const state = await newGroup(conversationId, own);
      this.groups.set(conversationId, { state, epoch: 0, seq: 0 });
      await this.flush(conversationId);
    });
    await this.addUsers(conversationId, memberIds);
  }

  /** Adds every device of these users that is not yet a leaf (this device excepted). */
  addUsers(conversationId: string, userIds: string[]): Promise<void> {
    return this.commitLoop(conversationId, async (state) => {
      const present = new Set(groupLeaves(state).map((l) => (l.device ? `${l.device.userId}/${l.device.deviceId}` : "")));
      const claimed = await this.hooks.request<{ key_packages: { user_id: string; device_id: string; key_package: string }[] }>(
        "POST",
        "/v1/mls/key-packages/claim",
        { user_ids: [...new Set(userIds)] },
      );
      const add = claimed.key_packages
        .filter((k) => k.device_id !== this.device.deviceId && !present.has(`${k.user_id}/${k.device_id}`))
        .map((k) => k.key_package);
      return { add };
    });
  }

  /** Removes every leaf of these users (after the server removed them from the conversation). */
  removeUsers(conversationId: string, userIds: string[]): Promise<void> {
    return this.commitLoop(conversationId, async () => ({ add: [], removeUsers: userIds }));
  }

  /**
   * Makes the change as a commit at the group's epoch until the Delivery Service takes it:
   * on 409 the commits that won are applied from history and the change is built again
   * (it may have become empty); users the server says must go are removed along with it.
   */
  private commitLoop(conversationId: string, build: (state: MlsGroupState) => Promise<{ add: string[]; removeUsers?: string[] }>): Promise<void> {
    return this.locked(conversationId, async () => {
      let mustRemove: string[] = [];
      let refreshes = 0;
      for (let attempt = 0; attempt < 8; attempt++) {
        const g = await this.group(conversationId);
        if (!g) throw new ChatError("forbidden", `this device is not in the MLS group of ${conversationId}`);
        const change = await build(g.state);
        const removeUsers = new Set([...(change.removeUsers ?? []), ...mustRemove]);
        const remove = groupLeaves(g.state)
          .filter((l) => l.device && removeUsers.has(l.device.userId) && l.device.deviceId !== this.device.deviceId)
          .map((l) => l.index);
        if (change.add.length === 0 && remove.length === 0) return;
        let upload = await commitChanges(g.state, { add: change.add, remove });
        // ts-mls 1.6.4 joiners reject some valid trees (see joinableTree): an empty commit
        // first (a path, resetting this device's direct path) makes the add joinable.
        // Checked on every try: a commit that won in between (a 409) can leave such a tree again.
        const refresh = refreshes < 3 && remove.length === 0 && change.add.length > 0 && !joinableTree(upload.state);
        if (refresh) {
          refreshes++;
          upload = await commitChanges(g.state, {});
        }
        const body = {
          epoch: g.epoch,
          commit: upload.commit,
          group_info: upload.group_info,
          ...(upload.welcome ? { welcome: upload.welcome } : {}),
          client_message_id: `c_${globalThis.crypto.randomUUID()}`,
        };
        try {
          const accepted = await this.postCommit(conversationId, body);
          this.groups.set(conversationId, { state: upload.state, epoch: accepted.epoch, seq: accepted.seq });
          await this.flush(conversationId);
          if (!refresh) return;
          // The empty commit is in: now the change itself.
          continue;
        } catch (err) {
          if (!(err instanceof ChatError) || err.status !== 409) throw err;
          const conflict = (err.body ?? {}) as Conflict;
          mustRemove = conflict.pending_removals ?? [];
          await this.catchUp(conversationId);
        }
      }
      throw new ChatError("conflict", `could not get an MLS commit into ${conversationId}: other commits kept winning`, 409);
    });
  }

  /** Posts a commit, retrying the same body (same client_message_id) while there is no answer. */
  private async postCommit(conversationId: string, body: Record<string, unknown>): Promise<{ epoch: number; seq: number }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.hooks.request<{ epoch: number; seq: number }>("POST", `/v1/conversations/${encodeURIComponent(conversationId)}/mls/commits`, body);
      } catch (err) {
        if (!(err instanceof ChatError) || !err.transient || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, Math.max(250 * 2 ** attempt, (err.retryAfter ?? 0) * 1000)));
      }
    }
  }

  /** Applies, from history, the commits after the last one this group applied (called under the lock). */
  private async catchUp(conversationId: string): Promise<void> {
    const g = await this.group(conversationId);
    if (!g) return;
    let from = g.seq;
    for (;;) {
      const page = await this.hooks.request<{ messages: Message[] }>(
        "GET",
        `/v1/conversations/${encodeURIComponent(conversationId)}/messages`,
        undefined,
        { after_seq: from, limit: 200 },
      );
      for (const m of page.messages) if (m.kind === "mls_commit") await this.applyCommit(conversationId, m);
      if (page.messages.length < 200) break;
      from = page.messages[page.messages.length - 1]!.seq;
    }
    await this.flush(conversationId);
  }
}
