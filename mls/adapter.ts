/**
 * The one place that speaks ts-mls (pinned at 1.6.4): CONTRACT.md section 10.
 *
 * Shared by the Worker and its objects (the Delivery Service checks: key packages,
 * commits, group info) and by the SDK and tests (key packages, groups, commits). Only
 * WebCrypto and ts-mls: nothing Worker-only, so it runs in browsers and Node too.
 *
 * Binary MLS structures travel as base64url without padding of their TLS encoding,
 * always in the `MLSMessage` wrapper (RFC 9420 §6).
 */
import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPubAndRatchetTree,
  decodeGroupState,
  decodeMlsMessage,
  defaultCapabilities,
  emptyPskIndex,
  encodeGroupState,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  joinGroupExternal,
  processMessage,
  type CiphersuiteImpl,
  type CiphersuiteName,
  type ClientState,
  type GroupInfo,
  type KeyPackage,
  type Lifetime,
  type MLSMessage,
  type PrivateKeyPackage,
  type Proposal,
  type RatchetTree,
} from "ts-mls";
import { ratchetTreeFromExtension, verifyGroupInfoSignature } from "ts-mls/groupInfo.js";
import { defaultClientConfig } from "ts-mls/clientConfig.js";
import { makeKeyPackageRef, verifyKeyPackage } from "ts-mls/keyPackage.js";
import { verifyLeafNodeSignatureKeyPackage } from "ts-mls/leafNode.js";

/** Cipher suite 1, the only one the server accepts. */
export const MLS_CIPHER_SUITE: CiphersuiteName = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519";

const suites = new Map<CiphersuiteName, Promise<CiphersuiteImpl>>();
/** The ciphersuite's implementation (WebCrypto where it can), made once. */
export function suite(name: CiphersuiteName = MLS_CIPHER_SUITE): Promise<CiphersuiteImpl> {
  let impl = suites.get(name);
  if (!impl) suites.set(name, (impl = getCiphersuiteImpl(getCiphersuiteFromName(name))));
  return impl;
}

// ---- encodings ----------------------------------------------------------------

export function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The bytes of base64url without padding; null for anything else. */
export function fromBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  try {
    const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

/** The credential identity of a device: the UTF-8 bytes of `USER_ID/DEVICE_ID`. */
export const deviceIdentity = (userId: string, deviceId: string) => `${userId}/${deviceId}`;

export interface DeviceRef {
  userId: string;
  deviceId: string;
}

/** Splits a credential identity; null when it is not `USER_ID/DEVICE_ID` in UTF-8. */
export function parseIdentity(bytes: Uint8Array): DeviceRef | null {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
  const cut = text.indexOf("/");
  if (cut <= 0 || cut === text.length - 1 || text.indexOf("/", cut + 1) !== -1) return null;
  return { userId: text.slice(0, cut), deviceId: text.slice(cut + 1) };
}

/** An MLSMessage from base64url: the whole input must be one message. */
function decodeMessage(b64: string): MLSMessage | null {
  const bytes = fromBase64Url(b64);
  if (!bytes || bytes.length === 0) return null;
  try {
    const decoded = decodeMlsMessage(bytes, 0);
    if (!decoded || decoded[1] !== bytes.length) return null;
    return decoded[0].version === "mls10" ? decoded[0] : null;
  } catch {
    return null;
  }
}

export const encodeKeyPackageMessage = (keyPackage: KeyPackage) =>
  toBase64Url(encodeMlsMessage({ version: "mls10", wireformat: "mls_key_package", keyPackage }));

export const encodeGroupInfoMessage = (groupInfo: GroupInfo) =>
  toBase64Url(encodeMlsMessage({ version: "mls10", wireformat: "mls_group_info", groupInfo }));

// ---- Delivery Service checks -----------------------------------------------------

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };
const bad = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

export interface CheckedKeyPackage {
  /** Seconds since the epoch after which it must not be used (capped to a safe integer). */
  notAfter: number;
}

/**
 * A key package as the directory accepts it: an MLSMessage holding a KeyPackage of
 * cipher suite 1 whose KeyPackageTBS and leaf node signatures verify, with a basic
 * credential naming `identity` and a lifetime that includes `nowSeconds`.
 */
export async function checkKeyPackage(b64: string, identity: DeviceRef, nowSeconds: number): Promise<Checked<CheckedKeyPackage>> {
  const message = decodeMessage(b64);
  if (!message || message.wireformat !== "mls_key_package") return bad("not an MLSMessage holding a KeyPackage");
  const kp = message.keyPackage;
  if (kp.cipherSuite !== MLS_CIPHER_SUITE) return bad(`cipher suite must be ${MLS_CIPHER_SUITE} (1)`);
  const leaf = kp.leafNode;
  if (leaf.credential.credentialType !== "basic") return bad("credential must be basic");
  const named = parseIdentity(leaf.credential.identity);
  if (!named || named.userId !== identity.userId || named.deviceId !== identity.deviceId) {
    return bad("credential identity must be USER_ID/DEVICE_ID of the calling device");
  }
  const now = BigInt(Math.floor(nowSeconds));
  if (leaf.lifetime.notBefore > now + 3600n) return bad("lifetime has not begun");
  if (leaf.lifetime.notAfter <= now) return bad("key package has expired");
  const cs = await suite();
  try {
    if (!(await verifyKeyPackage(kp, cs.signature)) || !(await verifyLeafNodeSignatureKeyPackage(leaf, cs.signature))) {
      return bad("signature does not verify");
    }
  } catch {
    return bad("signature does not verify");
  }
  const notAfter = leaf.lifetime.notAfter > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(leaf.lifetime.notAfter);
  return { ok: true, value: { notAfter } };
}

export interface CommitHeader {
  /** The group id as UTF-8 (null when it is not UTF-8). */
  groupId: string | null;
  epoch: number;
  /** A new member joining from the group info (sender `new_member_commit`). */
  external: boolean;
  /** The committer's leaf index for a member commit. */
  senderLeaf: number | null;
}

/** What the Delivery Service reads of a commit: it must be a PublicMessage holding a Commit. */
export function readCommit(b64: string): Checked<CommitHeader> {
  const message = decodeMessage(b64);
  if (!message || message.wireformat !== "mls_public_message") return bad("commit: not an MLSMessage holding a PublicMessage");
  const content = message.publicMessage.content;
  if (content.contentType !== "commit") return bad("commit: the PublicMessage does not hold a Commit");
  const sender = content.sender;
  if (sender.senderType !== "member" && sender.senderType !== "new_member_commit") return bad("commit: sender must be a member or a new member");
  return {
    ok: true,
    value: {
      groupId: utf8(content.groupId),
      epoch: Number(content.epoch),
      external: sender.senderType === "new_member_commit",
      senderLeaf: sender.senderType === "member" ? sender.leafIndex : null,
    },
  };
}

/**
 * What the Delivery Service reads of an application message: a PrivateMessage's clear
 * header (group id and epoch; the rest needs the group's keys).
 */
export function readPrivateMessage(b64: string): Checked<{ groupId: string | null; epoch: number }> {
  const message = decodeMessage(b64);
  if (!message || message.wireformat !== "mls_private_message") return bad("content: not an MLSMessage holding a PrivateMessage");
  return { ok: true, value: { groupId: utf8(message.privateMessage.groupId), epoch: Number(message.privateMessage.epoch) } };
}

export interface GroupInfoSummary {
  groupId: string | null;
  epoch: number;
  /** Every non-blank leaf of the epoch's ratchet tree, by leaf index, with its credential identity. */
  leaves: { index: number; identity: DeviceRef | null }[];
  signer: number;
}

/**
 * The group info of an epoch, with the leaves of its ratchet_tree extension; the signer's
 * signature over GroupInfoTBS is verified with the signer's key in that tree.
 */
export async function readGroupInfo(b64: string): Promise<Checked<GroupInfoSummary>> {
  const message = decodeMessage(b64);
  if (!message || message.wireformat !== "mls_group_info") return bad("group_info: not an MLSMessage holding a GroupInfo");
  const gi = message.groupInfo;
  if (gi.groupContext.cipherSuite !== MLS_CIPHER_SUITE) return bad(`group_info: cipher suite must be ${MLS_CIPHER_SUITE} (1)`);
  let tree: RatchetTree | undefined;
  try {
    tree = ratchetTreeFromExtension(gi);
  } catch {
    return bad("group_info: the ratchet_tree extension does not decode");
  }
  if (!tree) return bad("group_info: a ratchet_tree extension is required");
  const leaves: GroupInfoSummary["leaves"] = [];
  let signerKey: Uint8Array | null = null;
  for (let node = 0; node < tree.length; node += 2) {
    const entry = tree[node];
    if (!entry) continue;
    if (entry.nodeType !== "leaf") return bad("group_info: a leaf position holds a parent node");
    const index = node / 2;
    const credential = entry.leaf.credential;
    leaves.push({ index, identity: credential.credentialType === "basic" ? parseIdentity(credential.identity) : null });
    if (index === gi.signer) signerKey = entry.leaf.signaturePublicKey;
  }
  if (!signerKey) return bad("group_info: the signer is not a leaf of the tree");
  const cs = await suite();
  let signed = false;
  try {
    signed = await verifyGroupInfoSignature(gi, signerKey, cs.signature);
  } catch {
    signed = false;
  }
  if (!signed) return bad("group_info: signature does not verify");
  return { ok: true, value: { groupId: utf8(gi.groupContext.groupId), epoch: Number(gi.groupContext.epoch), leaves, signer: gi.signer } };
}

/** A welcome as the Delivery Service relays it: an MLSMessage holding a Welcome of cipher suite 1. */
export function checkWelcome(b64: string): Checked<null> {
  const message = decodeMessage(b64);
  if (!message || message.wireformat !== "mls_welcome") return bad("welcome: not an MLSMessage holding a Welcome");
  if (message.welcome.cipherSuite !== MLS_CIPHER_SUITE) return bad(`welcome: cipher suite must be ${MLS_CIPHER_SUITE} (1)`);
  return { ok: true, value: null };
}

function utf8(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

// ---- Client side: key packages, groups, commits ---------------------------------

export interface DeviceKeyPackage {
  /** What to upload: base64url of the MLSMessage. */
  encoded: string;
  publicPackage: KeyPackage;
  privatePackage: PrivateKeyPackage;
}

/** A key package for a device (cipher suite 1 unless told), with its private keys. */
export async function newKeyPackage(
  device: DeviceRef,
  opts: { lifetime?: Lifetime; cipherSuite?: CiphersuiteName } = {},
): Promise<DeviceKeyPackage> {
  const cs = await suite(opts.cipherSuite);
  const credential = { credentialType: "basic" as const, identity: new TextEncoder().encode(deviceIdentity(device.userId, device.deviceId)) };
  const now = BigInt(Math.floor(Date.now() / 1000));
  const lifetime = opts.lifetime ?? { notBefore: now - 3600n, notAfter: now + 90n * 24n * 3600n };
  const { publicPackage, privatePackage } = await generateKeyPackage(credential, defaultCapabilities(), lifetime, [], cs);
  return { encoded: encodeKeyPackageMessage(publicPackage), publicPackage, privatePackage };
}

/** The KeyPackage inside an uploaded (or claimed) base64url MLSMessage. */
export function decodeKeyPackageMessage(b64: string): KeyPackage | null {
  const message = decodeMessage(b64);
  return message?.wireformat === "mls_key_package" ? message.keyPackage : null;
}

/** A new group at epoch 0 whose id is the conversation id, with the creating device as its only leaf. */
export async function newGroup(conversationId: string, own: DeviceKeyPackage): Promise<ClientState> {
  return createGroup(new TextEncoder().encode(conversationId), own.publicPackage, own.privatePackage, [], await suite());
}

/** What the commit endpoint takes, less epoch and client_message_id. */
export interface CommitUpload {
  commit: string;
  group_info: string;
  welcome?: string;
  state: ClientState;
}

/** A commit adding these key packages (base64url) and removing these leaf indexes, as a PublicMessage. */
export async function commitChanges(state: ClientState, changes: { add?: string[]; remove?: number[] }): Promise<CommitUpload> {
  const cs = await suite();
  const proposals: Proposal[] = [];
  for (const b64 of changes.add ?? []) {
    const keyPackage = decodeKeyPackageMessage(b64);
    if (!keyPackage) throw new Error("not a key package");
    proposals.push({ proposalType: "add", add: { keyPackage } });
  }
  for (const removed of changes.remove ?? []) proposals.push({ proposalType: "remove", remove: { removed } });
  const result = await createCommit({ state, cipherSuite: cs }, { extraProposals: proposals, wireAsPublicMessage: true, ratchetTreeExtension: true });
  const groupInfo = await createGroupInfoWithExternalPubAndRatchetTree(result.newState, [], cs);
  return {
    commit: toBase64Url(encodeMlsMessage(result.commit)),
    group_info: encodeGroupInfoMessage(groupInfo),
    ...(result.welcome ? { welcome: toBase64Url(encodeMlsMessage({ version: "mls10", wireformat: "mls_welcome", welcome: result.welcome })) } : {}),
    state: result.newState,
  };
}

/** A device joins from the group info by itself: an external commit, and the group info of the epoch it makes. */
/**
 * `resync`: the device already has a leaf in the tree (added by a member, its welcome never
 * read) and replaces it (RFC 9420 §12.4.3.2). The old leaf is found by credential identity,
 * not by signature key as ts-mls does by default: the new key package has new keys.
 */
export async function commitExternalJoin(groupInfoB64: string, own: DeviceKeyPackage, resync = false): Promise<CommitUpload> {
  const cs = await suite();
  const message = decodeMessage(groupInfoB64);
  if (message?.wireformat !== "mls_group_info") throw new Error("not a group info");
  const sameDevice = (a: KeyPackage, leaf: { credential: KeyPackage["leafNode"]["credential"] }) =>
    a.leafNode.credential.credentialType === "basic" &&
    leaf.credential.credentialType === "basic" &&
    utf8(a.leafNode.credential.identity) === utf8(leaf.credential.identity);
  const config = resync
    ? { ...defaultClientConfig, keyPackageEqualityConfig: { ...defaultClientConfig.keyPackageEqualityConfig, compareKeyPackageToLeafNode: sameDevice } }
    : defaultClientConfig;
  const { publicMessage, newState } = await joinGroupExternal(message.groupInfo, own.publicPackage, own.privatePackage, resync, cs, undefined, config);
  const groupInfo = await createGroupInfoWithExternalPubAndRatchetTree(newState, [], cs);
  return {
    commit: toBase64Url(encodeMlsMessage({ version: "mls10", wireformat: "mls_public_message", publicMessage })),
    group_info: encodeGroupInfoMessage(groupInfo),
    state: newState,
  };
}

/** Joins from a welcome (base64url) with the key package it was made for; the tree comes from its group info. */
export async function joinFromWelcome(welcomeB64: string, own: DeviceKeyPackage): Promise<ClientState> {
  const message = decodeMessage(welcomeB64);
  if (message?.wireformat !== "mls_welcome") throw new Error("not a welcome");
  return joinGroup(message.welcome, own.publicPackage, own.privatePackage, emptyPskIndex, await suite());
}

/** The leaf index of a device in a group's current tree, or null. */
export function leafOf(state: ClientState, device: DeviceRef): number | null {
  const want = deviceIdentity(device.userId, device.deviceId);
  for (let node = 0; node < state.ratchetTree.length; node += 2) {
    const entry = state.ratchetTree[node];
    if (entry?.nodeType === "leaf" && entry.leaf.credential.credentialType === "basic") {
      if (utf8(entry.leaf.credential.identity) === want) return node / 2;
    }
  }
  return null;
}

// ---- Client side: application messages, incoming handshake, storage encodings ------

/** Encrypts application data to a PrivateMessage (base64url MLSMessage); the state moves on (its ratchet). */
export async function encryptApplication(state: ClientState, plaintext: Uint8Array): Promise<{ message: string; state: ClientState }> {
  const { newState, privateMessage } = await createApplicationMessage(state, plaintext, await suite());
  return { message: toBase64Url(encodeMlsMessage({ version: "mls10", wireformat: "mls_private_message", privateMessage })), state: newState };
}

export type Processed =
  | { kind: "application"; data: Uint8Array; state: ClientState }
  | { kind: "handshake"; state: ClientState };

/** Processes a PublicMessage (a commit) or PrivateMessage (application data) of the group. Throws when it cannot. */
export async function processIncoming(state: ClientState, b64: string): Promise<Processed> {
  const message = decodeMessage(b64);
  if (!message || (message.wireformat !== "mls_public_message" && message.wireformat !== "mls_private_message")) {
    throw new Error("not an MLS PublicMessage or PrivateMessage");
  }
  const result = await processMessage(message, state, emptyPskIndex, acceptAll, await suite());
  return result.kind === "applicationMessage"
    ? { kind: "application", data: result.message, state: result.newState }
    : { kind: "handshake", state: result.newState };
}

/** The epoch a PublicMessage or PrivateMessage was made in (readable without keys), or null. */
export function messageEpoch(b64: string): number | null {
  const message = decodeMessage(b64);
  if (message?.wireformat === "mls_private_message") return Number(message.privateMessage.epoch);
  if (message?.wireformat === "mls_public_message") return Number(message.publicMessage.content.epoch);
  return null;
}

export const groupEpoch = (state: ClientState): number => Number(state.groupContext.epoch);

/** A group state as base64url, for the SDK's storage (it holds private keys: keep it local). */
export const encodeGroupStateText = (state: ClientState): string => toBase64Url(encodeGroupState(state));

export function decodeGroupStateText(text: string): ClientState {
  const bytes = fromBase64Url(text);
  const decoded = bytes ? decodeGroupState(bytes, 0) : undefined;
  if (!decoded) throw new Error("not a stored group state");
  return { ...decoded[0], clientConfig: defaultClientConfig };
}

/** A device key package as JSON-safe text: the uploaded MLSMessage and the three private keys. */
export interface StoredKeyPackage {
  encoded: string;
  init: string;
  hpke: string;
  signature: string;
}

export const storeKeyPackage = (kp: DeviceKeyPackage): StoredKeyPackage => ({
  encoded: kp.encoded,
  init: toBase64Url(kp.privatePackage.initPrivateKey),
  hpke: toBase64Url(kp.privatePackage.hpkePrivateKey),
  signature: toBase64Url(kp.privatePackage.signaturePrivateKey),
});

export function loadKeyPackage(stored: StoredKeyPackage): DeviceKeyPackage {
  const publicPackage = decodeKeyPackageMessage(stored.encoded);
  const init = fromBase64Url(stored.init);
  const hpke = fromBase64Url(stored.hpke);
  const signature = fromBase64Url(stored.signature);
  if (!publicPackage || !init || !hpke || !signature) throw new Error("not a stored key package");
  return { encoded: stored.encoded, publicPackage, privatePackage: { initPrivateKey: init, hpkePrivateKey: hpke, signaturePrivateKey: signature } };
}

/** The KeyPackageRef (RFC 9420 §5.2) of a key package, base64url: what a welcome names its recipients by. */
export async function keyPackageRef(kp: KeyPackage): Promise<string> {
  return toBase64Url(await makeKeyPackageRef(kp, (await suite()).hash));
}

/** The KeyPackageRefs a welcome is encrypted to. */
export function welcomeRecipients(welcomeB64: string): string[] {
  const message = decodeMessage(welcomeB64);
  if (message?.wireformat !== "mls_welcome") return [];
  return message.welcome.secrets.map((s) => toBase64Url(s.newMember));
}

/** Every leaf of the group's tree with the device it names. */
export function groupLeaves(state: ClientState): { index: number; device: DeviceRef | null }[] {
  const out: { index: number; device: DeviceRef | null }[] = [];
  for (let node = 0; node < state.ratchetTree.length; node += 2) {
    const entry = state.ratchetTree[node];
    if (entry?.nodeType !== "leaf") continue;
    const credential = entry.leaf.credential;
    out.push({ index: node / 2, device: credential.credentialType === "basic" ? parseIdentity(credential.identity) : null });
  }
  return out;
}

/**
 * Each leaf's signature key as people compare it: the first 20 bytes of its SHA-256 in
 * groups of four hex digits, and a code for the whole group (SHA-256 over every leaf's
 * identity and key, in leaf order) that every member's device shows alike when no one
 * in between has swapped a key.
 */
export async function groupFingerprints(state: ClientState): Promise<{ leaves: { device: DeviceRef | null; fingerprint: string }[]; group: string }> {
  const leaves: { device: DeviceRef | null; fingerprint: string }[] = [];
  const all: Uint8Array[] = [];
  for (let node = 0; node < state.ratchetTree.length; node += 2) {
    const entry = state.ratchetTree[node];
    if (entry?.nodeType !== "leaf") continue;
    const credential = entry.leaf.credential;
    const device = credential.credentialType === "basic" ? parseIdentity(credential.identity) : null;
    leaves.push({ device, fingerprint: await fingerprint(entry.leaf.signaturePublicKey) });
    all.push(credential.credentialType === "basic" ? credential.identity : new Uint8Array(), entry.leaf.signaturePublicKey);
  }
  const joined = new Uint8Array(all.reduce((n, b) => n + b.length + 2, 0));
  let at = 0;
  for (const b of all) {
    joined.set([b.length >> 8, b.length & 255], at);
    joined.set(b, at + 2);
    at += b.length + 2;
  }
  return { leaves, group: await fingerprint(joined) };
}

async function fingerprint(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  const hex = [...digest.slice(0, 20)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return hex.match(/.{4}/g)!.join(" ");
}

/**
 * Whether a joiner accepts this state's ratchet tree: RFC 9420 §7.9.2, a leaf unmerged at a
 * parent node is unmerged at every non-blank node between. ts-mls 1.6.4 demanded more (the
 * same list on the leaf's whole direct path) until scripts/patch-ts-mls.mjs, which is why the
 * SDK checks a commit's tree before sending it (an empty commit with a path goes first then).
 */
export function joinableTree(state: ClientState): boolean {
  const tree = state.ratchetTree;
  const width = 2 ** Math.ceil(Math.log2(Math.max(1, (tree.length + 1) / 2)));
  const root = width - 1;
  // RFC 9420 Appendix C: the parent of x at level k.
  const parentOf = (node: number): number => {
    let level = 0;
    while (((node >> level) & 1) === 1) level++;
    return ((node >> (level + 1)) & 1) === 0 ? node + (1 << level) : node - (1 << level);
  };
  const directPath = (leaf: number): number[] => {
    const out: number[] = [];
    let node = leaf * 2;
    while (node !== root) {
      node = parentOf(node);
      out.push(node);
    }
    return out;
  };
  for (const [index, entry] of tree.entries()) {
    if (entry?.nodeType !== "parent") continue;
    for (const leaf of entry.parent.unmergedLeaves.map(Number)) {
      for (const p of directPath(leaf)) {
        if (p === index) break;
        const other = tree[p];
        if (other?.nodeType === "parent" && !other.parent.unmergedLeaves.map(Number).includes(leaf)) return false;
      }
    }
  }
  return true;
}

/** Whether this state's own leaf is still in the group (false once a commit removed it). */
export const isActiveMember = (state: ClientState): boolean => state.groupActiveState.kind === "active";

export type { ClientState as MlsGroupState };
