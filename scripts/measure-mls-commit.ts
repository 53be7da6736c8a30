/**
 * Measures the JSON body of POST /v1/conversations/{id}/mls/commits for big groups, to
 * size MAX_COMMIT_BODY_BYTES: `npx tsx scripts/measure-mls-commit.ts [leaves]` (default 256).
 * Prints the body of the commit creating a group of N leaves in one go (1 → N), and of
 * the commit adding one device to that group (N → N+1).
 */
import { commitChanges, newGroup, newKeyPackage } from "../mls/adapter";

const leaves = Number(process.argv[2] ?? 256);
const conversationId = `g_${"a".repeat(26)}`;
const device = (i: number) => ({ userId: `u_${i.toString().padStart(22, "0")}`, deviceId: `d_${i.toString().padStart(22, "0")}` });

const body = (epoch: number, c: { commit: string; group_info: string; welcome?: string }) =>
  JSON.stringify({ epoch, commit: c.commit, group_info: c.group_info, welcome: c.welcome, client_message_id: crypto.randomUUID() });

const own = await newKeyPackage(device(0));
let state = await newGroup(conversationId, own);
const others = await Promise.all(Array.from({ length: leaves - 1 }, (_, i) => newKeyPackage(device(i + 1))));
const create = await commitChanges(state, { add: others.map((k) => k.encoded) });
state = create.state;
const createBody = body(0, create);
const extra = await newKeyPackage(device(leaves));
const add = await commitChanges(state, { add: [extra.encoded] });
const addBody = body(1, add);
const size = (s: string) => new TextEncoder().encode(s).length;
console.log(JSON.stringify({
  leaves,
  create: { body: size(createBody), commit: create.commit.length, group_info: create.group_info.length, welcome: create.welcome?.length ?? 0 },
  addOne: { body: size(addBody), commit: add.commit.length, group_info: add.group_info.length, welcome: add.welcome?.length ?? 0 },
}, null, 2));
