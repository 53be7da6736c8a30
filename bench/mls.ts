/**
 * MLS figures for the README (issue 8), in Node with the SDK's adapter (ts-mls 1.6.4, suite 1):
 * encrypt and decrypt time per message, and for a group of N leaves (default 256) the time
 * and bytes of adding one member and of removing one. `npx tsx bench/mls.ts [leaves]`.
 * Bytes are the commit request body the Delivery Service receives (commit, group_info and
 * welcome, base64url in JSON); times are the committer's, then one other member's to apply it.
 */
import { commitChanges, encryptApplication, joinFromWelcome, newGroup, newKeyPackage, processIncoming } from "../mls/adapter";

const leaves = Number(process.argv[2] ?? 256);
const conversationId = `g_${"b".repeat(26)}`;
const device = (i: number) => ({ userId: `u_${i.toString().padStart(22, "0")}`, deviceId: `d_${i.toString().padStart(22, "0")}` });
const size = (c: { commit: string; group_info: string; welcome?: string }) =>
  new TextEncoder().encode(JSON.stringify({ epoch: 1, commit: c.commit, group_info: c.group_info, welcome: c.welcome, client_message_id: crypto.randomUUID() })).length;
const ms = (t: number) => Math.round((performance.now() - t) * 10) / 10;

const ownKp = await newKeyPackage(device(0));
const peerKp = await newKeyPackage(device(1));
const others = await Promise.all(Array.from({ length: leaves - 2 }, (_, i) => newKeyPackage(device(i + 2))));
let owner = await newGroup(conversationId, ownKp);
const create = await commitChanges(owner, { add: [peerKp.encoded, ...others.map((k) => k.encoded)] });
owner = create.state;
let peer = await joinFromWelcome(create.welcome!, peerKp);

// Per message: encrypt at the owner, decrypt at a peer, 200 times.
const enc: number[] = [];
const dec: number[] = [];
for (let i = 0; i < 200; i++) {
  let t = performance.now();
  const sent = await encryptApplication(owner, new TextEncoder().encode(JSON.stringify({ kind: "text", text: `message ${i} `.repeat(8) })));
  enc.push(ms(t));
  owner = sent.state;
  t = performance.now();
  const got = await processIncoming(peer, sent.message);
  dec.push(ms(t));
  peer = got.state;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let t = performance.now();
const extra = await newKeyPackage(device(leaves));
const add = await commitChanges(owner, { add: [extra.encoded] });
const addMs = ms(t);
t = performance.now();
peer = (await processIncoming(peer, add.commit)).state;
const addApplyMs = ms(t);
owner = add.state;

t = performance.now();
const remove = await commitChanges(owner, { remove: [leaves] });
const removeMs = ms(t);
t = performance.now();
peer = (await processIncoming(peer, remove.commit)).state;
const removeApplyMs = ms(t);

console.log(
  JSON.stringify(
    {
      leaves,
      message: { encrypt_ms_median: median(enc), decrypt_ms_median: median(dec) },
      add_one: { commit_ms: addMs, apply_ms: addApplyMs, body_bytes: size(add) },
      remove_one: { commit_ms: removeMs, apply_ms: removeApplyMs, body_bytes: size(remove) },
    },
    null,
    2,
  ),
);
