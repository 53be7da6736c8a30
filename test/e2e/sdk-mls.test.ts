/**
 * The SDK's MLS layer (client/dist, CONTRACT.md section 10) against the real server:
 * encrypted groups of several users with several devices each, where every device
 * decrypts every message; a device added later cannot read what came before; a removed
 * user's device cannot read what comes after; two devices committing at once converge;
 * and none of the plaintext reaches the server's persisted state (DO SQLite, D1, R2).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatClient, MemoryStorage, type ChatMessage } from "../../client/dist/index.js";
import { decodeGroupStateText, messageEpoch, processIncoming } from "../../mls/adapter";
import { PASSWORD, eventually, uniqueHandle } from "./client";
import { TestServer } from "./server";

let server: TestServer;
const clients: ChatClient[] = [];
const markers: string[] = [];
const FAST = { backoff: { baseMs: 50, capMs: 1_000, resetAfterMs: 2_000 } };

beforeAll(async () => {
  server = await TestServer.start({ args: ["--var", "SEND_RATE_PER_MINUTE:100000"] });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.dispose();
});

interface Device {
  chat: ChatClient;
  storage: MemoryStorage;
  name: string;
  got: ChatMessage[];
}

async function device(name: string, handle: string, first: boolean): Promise<Device> {
  const storage = new MemoryStorage();
  const options = { baseUrl: server.baseUrl, handle, password: PASSWORD, storage, ...FAST };
  const chat = first ? await ChatClient.register(options) : await ChatClient.login(options);
  clients.push(chat);
  const got: ChatMessage[] = [];
  chat.on("message", (m) => got.push(m));
  chat.on("error", (e) => console.log(`[sdk-mls] ${name} error: ${e.code} ${e.message}`));
  // A device that never connected has no cursor: it must be on the stream before its welcome.
  await chat.connect();
  return { chat, storage, name, got };
}

/** A user with `n` devices. */
async function user(prefix: string, n: number): Promise<Device[]> {
  const handle = uniqueHandle(prefix);
  const out = [await device(`${prefix}1`, handle, true)];
  for (let i = 2; i <= n; i++) out.push(await device(`${prefix}${i}`, handle, false));
  return out;
}

const marker = (label: string) => {
  const m = `PLAINTEXT-MARKER-${label}-${globalThis.crypto.randomUUID()}`;
  markers.push(m);
  return m;
};

const textsIn = (d: Device, conversationId: string) => d.got.filter((m) => m.conversation_id === conversationId && m.kind === "encrypted").map((m) => m.text);

/** Waits until every device has handed out each text, decrypted, in this conversation. */
async function allRead(devices: Device[], conversationId: string, texts: string[], what: string): Promise<void> {
  const missing = () => devices.filter((d) => !texts.every((t) => textsIn(d, conversationId).includes(t))).map((d) => d.name);
  setTimeout(() => missing().length && console.log(`[sdk-mls] still missing at ${missing().join(", ")}`), 20_000).unref();
  await eventually(
    () => (devices.every((d) => texts.every((t) => textsIn(d, conversationId).includes(t))) ? true : undefined),
    30_000,
    what,
  );
}

/** Every file under a directory, recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

const timings = (chat: ChatClient) => (chat as unknown as { mls: { timings: { encrypt: number[]; decrypt: number[] } } }).mls.timings;

describe("SDK: MLS-encrypted conversations", () => {
  let alice: Device[];
  let bob: Device[];
  let carol: Device[];
  let dave: Device;
  let conversationId: string;
  const before: string[] = [];

  it("three users with two devices each in an encrypted group: every device decrypts every message", async () => {
    [alice, bob, carol] = await Promise.all([user("ma", 2), user("mb", 2), user("mc", 2)]);
    const everyone = [...alice, ...bob, ...carol];
    // Each device uploaded its key packages at sign-in.
    for (const d of everyone) expect((await d.chat.request<{ count: number }>("GET", "/v1/mls/key-packages/count")).count).toBe(20);

    const started = Date.now();
    const group = await alice[0]!.chat.createGroup("secret", [bob[0]!.chat.userId, carol[0]!.chat.userId], { encrypted: true });
    const createMs = Date.now() - started;
    conversationId = group.conversation_id;
    expect((group as { encryption?: string }).encryption).toBe("mls");

    // Every device sends one (before its welcome arrives the outbox waits and retries).
    const texts = everyone.map((d) => marker(`from-${d.name}`));
    const sent = await Promise.all(everyone.map((d, i) => d.chat.sendText(conversationId, texts[i]!)));
    for (const [i, m] of sent.entries()) {
      expect(m.kind).toBe("encrypted");
      expect(m.text).toBe(texts[i]);
      expect(m.content).not.toContain(texts[i]);
    }
    await allRead(everyone, conversationId, texts, "every device reads every message");
    before.push(...texts);

    // history() shows what this device read or sent, in seq order.
    for (const d of everyone) {
      const history = (await d.chat.history(conversationId)).filter((m) => m.kind === "encrypted");
      expect(history.map((m) => m.text).sort()).toEqual([...texts].sort());
    }
    // The server holds commits and ciphertext only.
    const raw = await alice[0]!.chat.request<{ messages: { kind: string; content: string }[] }>("GET", `/v1/conversations/${conversationId}/messages`);
    expect(new Set(raw.messages.map((m) => m.kind))).toEqual(new Set(["mls_commit", "encrypted"]));
    for (const t of texts) expect(JSON.stringify(raw)).not.toContain(t);

    const enc = everyone.flatMap((d) => timings(d.chat).encrypt);
    const dec = everyone.flatMap((d) => timings(d.chat).decrypt);
    const avg = (xs: number[]) => (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2);
    console.log(`[sdk-mls] create + add 4 devices: ${createMs} ms; encrypt ${avg(enc)} ms/message (${enc.length}), decrypt ${avg(dec)} ms/message (${dec.length})`);
  });

  it("a device added later cannot read the messages before it joined, and reads those after", async () => {
    [dave] = await user("md", 1);
    await alice[0]!.chat.addMembers(conversationId, [dave.chat.userId]);
    const after = marker("after-dave");
    await bob[1]!.chat.sendText(conversationId, after);
    await allRead([...alice, ...bob, ...carol, dave], conversationId, [after], "everyone, dave too, reads the message after he joined");
    const history = await dave.chat.history(conversationId);
    for (const m of history) if (m.kind === "encrypted" && m.text !== after) expect(before).not.toContain(m.text);
    expect(history.filter((m) => m.kind === "encrypted" && m.text !== undefined).map((m) => m.text)).toEqual([after]);
    // Nor can its group state open them: they are of epochs before its welcome.
    const stored = await dave.storage.read<{ state: string }>(`mls.group.${conversationId}`);
    const state = decodeGroupStateText(stored!.state);
    const raw = await alice[0]!.chat.request<{ messages: ChatMessage[] }>("GET", `/v1/conversations/${conversationId}/messages`);
    const afterSeq = dave.got.find((m) => m.text === after)!.seq;
    const early = raw.messages.filter((m) => m.kind === "encrypted" && m.seq < afterSeq);
    expect(early.length).toBe(before.length);
    for (const m of early) await expect(processIncoming(state, m.content)).rejects.toThrow();
  });

  it("a removed user's device, keeping its old state, cannot decrypt what is sent after the removal", async () => {
    const old = await carol[0]!.storage.read<{ state: string }>(`mls.group.${conversationId}`);
    expect(old).toBeTruthy();
    await alice[0]!.chat.removeMember(conversationId, carol[0]!.chat.userId);
    // Bob's device sends at once, most likely before it has applied the removal commit: the
    // Delivery Service refuses a PrivateMessage of the past epoch (409), and the SDK applies
    // the commit and encrypts the message again, in the epoch carol has no keys for.
    const key = `mls.group.${conversationId}`;
    const removalEpoch = (await alice[0]!.storage.read<{ epoch: number }>(key))!.epoch;
    const secret = marker("after-carol-removed");
    const sent = await bob[0]!.chat.sendText(conversationId, secret);
    expect(messageEpoch(sent.content)).toBe(removalEpoch);
    await allRead([...alice, ...bob, dave], conversationId, [secret], "the remaining devices read the message after the removal");
    await expect(processIncoming(decodeGroupStateText(old!.state), sent.content)).rejects.toThrow();
    for (const d of carol) expect(textsIn(d, conversationId)).not.toContain(secret);
  });

  it("two devices committing at once converge", async () => {
    const [erin] = await user("me", 1);
    const [frank] = await user("mf", 1);
    // Both of alice's devices add someone at the same epoch: one wins, the other applies it and commits again.
    await Promise.all([alice[0]!.chat.addMembers(conversationId, [erin!.chat.userId]), alice[1]!.chat.addMembers(conversationId, [frank!.chat.userId])]);
    const all = [...alice, ...bob, dave, erin!, frank!];
    const text = marker("after-concurrent-adds");
    await dave.chat.sendText(conversationId, text);
    await allRead(all, conversationId, [text], "every device, erin and frank too, reads the message after the concurrent adds");
    await eventually(
      async () => {
        const epochs = await Promise.all(all.map(async (d) => (await d.storage.read<{ epoch: number }>(`mls.group.${conversationId}`))?.epoch));
        return new Set(epochs).size === 1 ? epochs : undefined;
      },
      10_000,
      "every device at the same epoch",
    );
  });

  it("a device restarted from its storage, with a commit made while it was down, catches up and decrypts", async () => {
    const [gina] = await user("mg", 1);
    const down = bob[1]!;
    await down.chat.close();
    // While bob's second device is down: a membership commit, then a message in the new epoch.
    await alice[0]!.chat.addMembers(conversationId, [gina!.chat.userId]);
    const text = marker("after-a-commit-while-down");
    await alice[1]!.chat.sendText(conversationId, text);
    const restarted = (await ChatClient.restore({ baseUrl: server.baseUrl, storage: down.storage, ...FAST }))!;
    clients.push(restarted);
    const again: Device = { chat: restarted, storage: down.storage, name: "mb2-restarted", got: [] };
    restarted.on("message", (m) => again.got.push(m));
    await restarted.connect();
    bob[1] = again;
    await allRead([again, gina!], conversationId, [text], "the restarted device and the new member read the message after the commit");
  });

  it("a commit whose answer is lost (the connection drops mid-commit) is retried with the same id and converges", async () => {
    const [hank] = await user("mh", 1);
    let dropped = 0;
    // Alice's device: the first commit request reaches the server, but its answer never arrives.
    const lossy = async (input: string, init?: RequestInit) => {
      const res = await fetch(input, init);
      if (init?.method === "POST" && input.includes("/mls/commits") && dropped === 0) {
        dropped++;
        throw new TypeError("fetch failed: the connection dropped");
      }
      return res;
    };
    const storage = new MemoryStorage();
    const flaky = await ChatClient.login({ baseUrl: server.baseUrl, handle: alice[0]!.chat.handle, password: PASSWORD, storage, fetch: lossy, ...FAST });
    clients.push(flaky);
    await flaky.connect();
    await flaky.addMembers(conversationId, [hank!.chat.userId]);
    expect(dropped).toBe(1);
    const raw = await flaky.request<{ messages: { kind: string; seq: number }[] }>("GET", `/v1/conversations/${conversationId}/messages`, undefined, { limit: 200 });
    const text = marker("after-a-lost-commit-answer");
    await flaky.sendText(conversationId, text);
    await allRead([...alice, ...bob, hank!], conversationId, [text], "every device, hank too, reads what follows the retried commit");
    expect(raw.messages.filter((m) => m.kind === "mls_commit").length).toBeGreaterThan(0);
  });

  it("a user's device signed in after the group was made joins it by external commit at connect()", async () => {
    const earlier = marker("before-bob3");
    await alice[0]!.chat.sendText(conversationId, earlier);
    const bob3 = await device("mb3", bob[0]!.chat.handle, false);
    expect(await (bob3.chat as unknown as { mls: { hasGroup(id: string): Promise<boolean> } }).mls.hasGroup(conversationId)).toBe(true);
    const everyone = [...alice, ...bob, dave, bob3];
    const fromOld = marker("to-bob3");
    const fromNew = marker("from-bob3");
    await alice[1]!.chat.sendText(conversationId, fromOld);
    await bob3.chat.sendText(conversationId, fromNew);
    await allRead(everyone, conversationId, [fromOld, fromNew], "every device, bob's new one too, reads the messages after its join");
    expect(textsIn(bob3, conversationId)).not.toContain(earlier);
  });

  it("a client that never connects can still send into a group someone else added it to (it replaces its leaf by itself)", async () => {
    const storage = new MemoryStorage();
    const quiet = await ChatClient.register({ baseUrl: server.baseUrl, handle: uniqueHandle("mq"), password: PASSWORD, storage, ...FAST });
    clients.push(quiet);
    await alice[0]!.chat.addMembers(conversationId, [quiet.userId]);
    const text = marker("from-a-client-without-a-stream");
    const sent = await quiet.sendText(conversationId, text);
    expect(sent.kind).toBe("encrypted");
    await allRead([...alice, ...bob, dave], conversationId, [text], "every device reads what the unconnected client sent");
  });

  it("encrypted media: the server holds ciphertext; members decrypt it with the key the message carried; edits are decrypted too", async () => {
    const bytes = new TextEncoder().encode(marker("inside-a-file").repeat(40));
    const sent = await alice[0]!.chat.sendMedia(conversationId, bytes, { contentType: "text/plain", name: "notes.txt" });
    expect(sent.kind).toBe("encrypted");
    const atBob = await eventually(async () => bob[0]!.got.find((m) => m.seq === sent.seq && m.media?.key), 30_000, "bob's copy of the media message");
    expect(atBob.media).toMatchObject({ name: "notes.txt", type: "text/plain", size: bytes.length });
    const plain = new Uint8Array(await (await bob[0]!.chat.fetchMedia(conversationId, sent.media_id!, atBob.media)).arrayBuffer());
    expect(plain).toEqual(bytes);
    // What the server serves is ciphertext, typed as such.
    const raw = await fetch(`${server.baseUrl}/v1/conversations/${conversationId}/media/${sent.media_id}`, { headers: { authorization: `Bearer ${bob[0]!.chat.getToken()}` } });
    expect(raw.headers.get("content-type")).toBe("application/octet-stream");
    expect(new Uint8Array(await raw.arrayBuffer())).not.toEqual(bytes);

    const updated: ChatMessage[] = [];
    bob[0]!.chat.on("updated", (m) => updated.push(m));
    const text = await alice[0]!.chat.sendText(conversationId, marker("before-edit"));
    await allRead([bob[0]!], conversationId, [text.text!], "bob reads the text before the edit");
    const edit = marker("after-edit");
    await alice[0]!.chat.editMessage(conversationId, text.seq, edit);
    await eventually(async () => (updated.some((m) => m.seq === text.seq && m.text === edit) ? true : undefined), 30_000, "bob decrypts the edit");
  });

  it("every device shows the same key fingerprints for the group, to compare out of band", async () => {
    const devices = [...alice, ...bob, dave];
    const shown = await eventually(
      async () => {
        const all = await Promise.all(devices.map((d) => d.chat.fingerprints(conversationId)));
        return new Set(all.map((f) => f?.group)).size === 1 && all[0] ? all : undefined;
      },
      15_000,
      "the same group code on every device",
    );
    const mine = shown[0]!.devices.find((d) => d.device_id === alice[0]!.chat.deviceId)!;
    expect(mine.fingerprint).toMatch(/^([0-9a-f]{4} ){9}[0-9a-f]{4}$/);
    for (const f of shown) expect(f!.devices).toEqual(shown[0]!.devices);
    expect(await carol[0]!.chat.fingerprints(conversationId).then((f) => f?.group)).not.toBe(shown[0]!.group);
  });

  it("none of the plaintext is in the server's persisted state (and a plain conversation's text is, as a control)", async () => {
    const control = `PLAIN-CONTROL-${globalThis.crypto.randomUUID()}`;
    const plain = await alice[0]!.chat.createDirect(bob[0]!.chat.userId, { encrypted: false });
    await alice[0]!.chat.sendText(plain.conversation_id, control);
    const files = filesUnder(server.persistDir);
    expect(files.length).toBeGreaterThan(0);
    await eventually(() => (files.some((f) => readFileSync(f).includes(control)) || filesUnder(server.persistDir).some((f) => readFileSync(f).includes(control)) ? true : undefined), 10_000, "the control text on disk");
    for (const f of filesUnder(server.persistDir)) {
      const bytes = readFileSync(f);
      for (const m of markers) expect(bytes.includes(m), `${m} in ${f}`).toBe(false);
    }
    expect(markers.length).toBeGreaterThan(5);
  });
});
