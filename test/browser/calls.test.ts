/**
 * A video call placed through the web app, in real Chromium (Debian's /usr/bin/chromium with
 * fake camera and microphone), between two people in two browser contexts, against the real
 * local server: the callee's page rings, accepts, both RTCPeerConnections reach `connected`,
 * video bytes flow both ways (getStats inbound-rtp), hang-up ends it on both sides and leaves
 * exactly one call event in the history. Then a declined and a missed call, and the service
 * worker's "Incoming call" notification.
 *
 * Every packet stays on loopback: the server and the browser run in a network namespace of
 * their own that has only `lo`. Outside one, this file re-runs itself under
 * `unshare -n sh -c 'ip link set lo up && …'` (as root; `unshare -rn` where unprivileged user
 * namespaces allow it) and checks the inner run's result; without unshare it is skipped,
 * saying why. Inside, ICE uses host candidates on 127.0.0.1 and a STUN server on 127.0.0.1
 * that nothing answers (the server is started with that `ICE_SERVERS`), so nothing waits on
 * the internet.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { notificationsForPush } from "./push";
import { sleep, until } from "./wait";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "..", "..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // Calls: a fake camera and microphone, granted without asking, and ICE on 127.0.0.1.
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
];
const PASSWORD = "correct horse battery";
/** Screenshots of the call screens, for a look (not part of the README). */
const SHOTS = join(tmpdir(), "edge-chat-screenshots");
/** The server's ring timeout in this test (the default is 45 s): the missed call is quick. */
const RING_SECONDS = 10;

/** `ip -o link` lists `lo` and nothing else. */
function onlyLoopback(): boolean {
  const r = spawnSync("ip", ["-o", "link"], { encoding: "utf8" });
  if (r.status !== 0) return false;
  const names = r.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(":")[1]?.trim().split("@")[0]);
  return names.length === 1 && names[0] === "lo";
}

const ISOLATED = process.env.EDGE_CHAT_NETNS === "1" || onlyLoopback();

/** How to get a namespace with only `lo` here, or why we cannot. */
function namespaceRecipe(): { flags: string[] } | { why: string } {
  if (!existsSync(CHROMIUM)) return { why: `no Chromium at ${CHROMIUM}` };
  const which = spawnSync("sh", ["-c", "command -v unshare && command -v ip"], { encoding: "utf8" });
  if (which.status !== 0) return { why: "unshare or ip (util-linux, iproute2) not installed" };
  const tries = process.getuid?.() === 0 ? [["-n"], ["-r", "-n"]] : [["-r", "-n"]];
  const errors: string[] = [];
  for (const flags of tries) {
    const r = spawnSync("unshare", [...flags, "sh", "-c", "ip link set lo up && ip -o link"], { encoding: "utf8", timeout: 10_000 });
    const links = r.stdout?.split("\n").filter(Boolean) ?? [];
    if (r.status === 0 && links.length === 1 && /^\d+: lo:/.test(links[0]!)) return { flags };
    errors.push(`unshare ${flags.join(" ")}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  }
  return { why: `cannot make a network namespace (${errors.join("; ")}); run as root or allow unprivileged user namespaces` };
}

interface CallReport {
  isolated: boolean;
  links: string;
  connectMs: number;
  caller: Stats;
  callee: Stats;
  callerGrowth: number;
  calleeGrowth: number;
  windowMs: number;
  entries: string[];
}

if (!ISOLATED) {
  const recipe = namespaceRecipe();
  if ("why" in recipe) console.warn(`[calls] skipped: ${recipe.why}`);
  describe.skipIf("why" in recipe)("video call in Chromium (re-run in a network namespace with only lo)", () => {
    it("passes inside the namespace, media on loopback", async () => {
      const { flags } = recipe as { flags: string[] };
      const dir = mkdtempSync(join(tmpdir(), "edge-chat-calls-"));
      const reportFile = join(dir, "report.json");
      const vitest = join(REPO, "node_modules", "vitest", "vitest.mjs");
      const started = Date.now();
      const child = spawn(
        "unshare",
        [...flags, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", process.execPath, vitest, "run", "--project", "browser", "test/browser/calls.test.ts"],
        { cwd: REPO, env: { ...process.env, EDGE_CHAT_NETNS: "1", EDGE_CHAT_CALL_REPORT: reportFile, FORCE_COLOR: "0", NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] },
      );
      let output = "";
      const forward = (chunk: Buffer) => {
        output += chunk.toString();
        for (const line of chunk.toString().split("\n")) if (line.trim()) process.stdout.write(`[calls netns] ${line}\n`);
      };
      child.stdout.on("data", forward);
      child.stderr.on("data", forward);
      const code = await new Promise<number | null>((ok) => child.once("exit", ok));
      try {
        expect(code, `the run in the namespace failed:\n${output.slice(-6000)}`).toBe(0);
        expect(existsSync(reportFile), `the run in the namespace wrote no report (were its tests skipped?):\n${output.slice(-3000)}`).toBe(true);
        const report = JSON.parse(readFileSync(reportFile, "utf8")) as CallReport;
        expect(report.isolated).toBe(true);
        console.log(
          `[calls] in a namespace with only lo (${Date.now() - started} ms in all): connected in ${report.connectMs} ms; ` +
            `video bytes received in ${report.windowMs} ms: caller +${report.callerGrowth} (total ${report.caller.bytes}), callee +${report.calleeGrowth} (total ${report.callee.bytes}); ` +
            `selected pair ${report.caller.local} ↔ ${report.caller.remote}; call entries ${JSON.stringify(report.entries)}`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 360_000);
  });
} else {
  describe.skipIf(!existsSync(CHROMIUM))("video call in Chromium, on loopback only", () => callSuite());
}

interface Stats {
  state: string;
  bytes: number;
  frames: number;
  local: string | null;
  remote: string | null;
}


/** The page's calls in progress (through the app's `edgeChat` global): their peer connections' states. */
function pcStates(page: Page): Promise<(string | null)[]> {
  return page.evaluate(() => {
    const model = (globalThis as unknown as { edgeChat: { chat: { calls: { active(): { pc: RTCPeerConnection | null }[] } } | null } }).edgeChat;
    return (model.chat?.calls.active() ?? []).map((c) => c.pc?.connectionState ?? null);
  });
}

/** Video received by the page's one call, and the ICE pair it uses. */
function videoStats(page: Page): Promise<Stats | null> {
  return page.evaluate(async () => {
    const model = (globalThis as unknown as { edgeChat: { chat: { calls: { active(): { pc: RTCPeerConnection | null }[] } } | null } }).edgeChat;
    const pc = model.chat?.calls.active()[0]?.pc;
    if (!pc) return null;
    const report = await pc.getStats();
    const byId = new Map<string, Record<string, unknown>>();
    report.forEach((s: Record<string, unknown>) => byId.set(s.id as string, s));
    let bytes = 0;
    let frames = 0;
    let local: string | null = null;
    let remote: string | null = null;
    report.forEach((s: Record<string, unknown>) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        bytes += Number(s.bytesReceived ?? 0);
        frames += Number(s.framesDecoded ?? 0);
      }
      if (s.type === "transport" && typeof s.selectedCandidatePairId === "string") {
        const pair = byId.get(s.selectedCandidatePairId);
        local = (byId.get(pair?.localCandidateId as string)?.address as string | undefined) ?? null;
        remote = (byId.get(pair?.remoteCandidateId as string)?.address as string | undefined) ?? null;
      }
    });
    return { state: pc.connectionState, bytes, frames, local, remote };
  });
}

function entries(page: Page): Promise<string[]> {
  return page.getByTestId("call-entry").evaluateAll((els) => els.map((e) => e.querySelector("[data-testid=call-entry-text]")?.textContent ?? ""));
}

function callSuite() {
  let server: import("../e2e/server").TestServer;
  let browser: Browser;
  let contexts: BrowserContext[] = [];
  let alice: Page;
  let bob: Page;
  const errors: string[] = [];
  const suffix = Date.now().toString(36).slice(-6);
  const names = { alice: `alice_${suffix}`, bob: `bob_${suffix}` };
  let directId = "";
  const report: Partial<CallReport> = {};

  beforeAll(async () => {
    const links = spawnSync("ip", ["-o", "link"], { encoding: "utf8" }).stdout;
    expect(onlyLoopback(), `not in a namespace with only lo:\n${links}`).toBe(true);
    report.isolated = true;
    mkdirSync(SHOTS, { recursive: true });
    report.links = links.trim();
    process.env.E2E_SNAPSHOT ??= "1";
    const { TestServer } = await import("../e2e/server");
    server = await TestServer.start({
      args: ["--var", 'ICE_SERVERS:[{"urls":"stun:127.0.0.1:3478"}]', "--var", `CALL_RING_TIMEOUT_SECONDS:${RING_SECONDS}`],
    });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const common = { baseURL: server.baseUrl, locale: "en-GB", timezoneId: "Europe/Amsterdam", viewport: { width: 1000, height: 720 } };
    contexts = [await browser.newContext(common), await browser.newContext(common)];
    for (const c of contexts) await c.grantPermissions(["camera", "microphone"], { origin: server.baseUrl });
    alice = await contexts[0]!.newPage();
    bob = await contexts[1]!.newPage();
    for (const [who, page] of [["alice", alice], ["bob", bob]] as const) page.on("pageerror", (err) => errors.push(`${who}: ${err.message}`));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
    if (process.env.EDGE_CHAT_CALL_REPORT && report.connectMs !== undefined) writeFileSync(process.env.EDGE_CHAT_CALL_REPORT, JSON.stringify(report));
  }, 60_000);

  afterEach(async (ctx) => {
    if (ctx.task.result?.state !== "fail") return;
    const dir = join(tmpdir(), "edge-chat-browser-failures");
    const name = ctx.task.name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60);
    await alice?.screenshot({ path: join(dir, `calls-${name}-alice.png`) }).catch(() => undefined);
    await bob?.screenshot({ path: join(dir, `calls-${name}-bob.png`) }).catch(() => undefined);
    console.warn(`[calls] screenshots of the failed step in ${dir}; server log ${server?.logFile}`);
  });

  async function signUp(page: Page, handle: string) {
    await page.goto("/");
    await page.getByTestId("auth-handle").fill(handle);
    await page.getByTestId("auth-password").fill(PASSWORD);
    await page.getByTestId("auth-register").click();
    await page.getByTestId("new-direct").waitFor();
  }

  it("two people and a direct chat", async () => {
    await signUp(alice, names.alice);
    await signUp(bob, names.bob);
    await alice.getByTestId("new-direct").click();
    await alice.getByTestId("new-direct-handle").fill(names.bob);
    await alice.getByTestId("new-direct-start").click();
    await until("alice's chat view", () => alice.url().includes("/c/"));
    directId = decodeURIComponent(alice.url().split("/c/")[1]!);
    await alice.getByTestId("composer").fill("Call you in a minute");
    await alice.getByTestId("composer").press("Enter");
    // Bob stays on the list: the ring reaches him on his device socket.
    await until("bob's conversation item", async () => (await bob.getByTestId("conversation-item").count()) === 1);
    expect(await alice.getByTestId("call-video").isEnabled()).toBe(true);
    expect(await alice.getByTestId("call-audio").isEnabled()).toBe(true);
  });

  it("places a video call: rings, is accepted, connects on 127.0.0.1, and video flows both ways", async () => {
    const t0 = Date.now();
    await alice.getByTestId("call-video").click();
    await alice.getByTestId("in-call").waitFor();
    await until("alice's status: calling", async () => (await alice.getByTestId("call-status").textContent())?.includes("Calling"));
    const incoming = bob.getByTestId("incoming-call");
    await incoming.waitFor({ timeout: 10_000 });
    await bob.screenshot({ path: join(SHOTS, "call-incoming.png") });
    expect(await incoming.textContent()).toContain("Incoming video call");
    expect(await incoming.textContent()).toContain(names.alice);
    await bob.getByTestId("call-accept").click();
    await bob.getByTestId("in-call").waitFor();
    await incoming.waitFor({ state: "detached" });

    await until("both peer connections connected", async () => {
      const [a, b] = [await pcStates(alice), await pcStates(bob)];
      return a.length === 1 && b.length === 1 && a[0] === "connected" && b[0] === "connected";
    }, 30_000);
    report.connectMs = Date.now() - t0;
    await until("both in-call views say connected", async () => (await alice.getByTestId("in-call").getAttribute("data-state")) === "connected" && (await bob.getByTestId("in-call").getAttribute("data-state")) === "connected");

    // Video bytes received grow on both sides.
    const first = [await videoStats(alice), await videoStats(bob)];
    const start = Date.now();
    await sleep(2_000);
    const second = [await videoStats(alice), await videoStats(bob)];
    report.windowMs = Date.now() - start;
    const [a0, b0] = first;
    const [a1, b1] = second;
    expect(a0 && b0 && a1 && b1).toBeTruthy();
    report.caller = a1!;
    report.callee = b1!;
    report.callerGrowth = a1!.bytes - a0!.bytes;
    report.calleeGrowth = b1!.bytes - b0!.bytes;
    console.log(`[calls] video bytes received in ${report.windowMs} ms: alice +${report.callerGrowth} (total ${a1!.bytes}, ${a1!.frames} frames), bob +${report.calleeGrowth} (total ${b1!.bytes}, ${b1!.frames} frames); pair ${a1!.local} ↔ ${a1!.remote}; connected ${report.connectMs} ms after the click`);
    expect(report.callerGrowth).toBeGreaterThan(10_000);
    expect(report.calleeGrowth).toBeGreaterThan(10_000);
    expect(a1!.frames).toBeGreaterThan(0);
    expect(b1!.frames).toBeGreaterThan(0);
    // Host candidates on loopback (there is nothing else in this namespace).
    expect([a1!.local, a1!.remote, b1!.local, b1!.remote]).toEqual(["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"]);
    // The remote video element plays the other side's camera.
    await until("bob's remote video playing", () => bob.getByTestId("remote-video").evaluate((v: HTMLVideoElement) => v.videoWidth > 0 && !v.paused));
    await until("alice's remote video playing", () => alice.getByTestId("remote-video").evaluate((v: HTMLVideoElement) => v.videoWidth > 0 && !v.paused));
    expect(await alice.getByTestId("local-video").count()).toBe(1);
    await alice.screenshot({ path: join(SHOTS, "call-in-call.png") });
  });

  it("mutes and turns the camera off and on", async () => {
    const localTracks = (page: Page) =>
      page.evaluate(() => {
        const model = (globalThis as unknown as { edgeChat: { call: { local: MediaStream | null } | null } }).edgeChat;
        return (model.call?.local?.getTracks() ?? []).map((t) => `${t.kind}:${t.enabled}`).sort();
      });
    expect(await localTracks(alice)).toEqual(["audio:true", "video:true"]);
    await alice.getByTestId("call-mute").click();
    expect(await alice.getByTestId("call-mute").getAttribute("aria-pressed")).toBe("true");
    await alice.getByTestId("call-camera").click();
    expect(await alice.getByTestId("call-camera").getAttribute("aria-pressed")).toBe("true");
    expect(await localTracks(alice)).toEqual(["audio:false", "video:false"]);
    await alice.getByTestId("call-mute").click();
    await alice.getByTestId("call-camera").click();
    expect(await localTracks(alice)).toEqual(["audio:true", "video:true"]);
    expect(await pcStates(alice)).toEqual(["connected"]);
  });

  it("hangs up: the call ends on both sides and leaves exactly one call event", async () => {
    await alice.getByTestId("call-hangup").click();
    await alice.getByTestId("in-call").waitFor({ state: "detached" });
    await bob.getByTestId("in-call").waitFor({ state: "detached", timeout: 10_000 });
    await until("no calls left", async () => (await pcStates(alice)).length === 0 && (await pcStates(bob)).length === 0);
    // The camera is released.
    expect(await alice.evaluate(() => (globalThis as unknown as { edgeChat: { call: unknown } }).edgeChat.call)).toBeNull();

    await until("alice's call entry", async () => (await entries(alice)).length === 1);
    await bob.getByTestId("conversation-item").click();
    await until("bob's call entry", async () => (await entries(bob)).length === 1);
    await alice.screenshot({ path: join(SHOTS, "call-entry.png") });
    const [a] = await entries(alice);
    expect(a).toMatch(/^Call, \d+:\d\d$/);
    expect(await entries(bob)).toEqual([a]);
    // No ticks on it, and it is no message bubble.
    expect(await alice.getByTestId("call-entry").locator(".ticks").count()).toBe(0);

    // And in the history, through the SDK from Node: one event of kind "call", completed.
    const { ChatClient, MemoryStorage } = await import("../../client/src/index");
    const reader = await ChatClient.login({ baseUrl: server.baseUrl, handle: names.alice, password: PASSWORD, storage: new MemoryStorage() });
    try {
      await sleep(1_000); // nothing more arrives
      const history = await reader.history(directId, { limit: 50 });
      const calls = history.filter((m) => m.kind === "call");
      expect(calls).toHaveLength(1);
      const content = JSON.parse(calls[0]!.content) as { call_id: string; outcome: string; started_at: number; ended_at: number };
      expect(content.outcome).toBe("completed");
      expect(content.ended_at).toBeGreaterThan(content.started_at);
    } finally {
      await reader.close();
    }
    // A call does not count as unread: Bob's badge is gone and Alice had none.
    expect(await bob.getByTestId("unread-badge").count()).toBe(0);
  });

  it("a declined voice call ends on both sides", async () => {
    await bob.goto("/");
    await bob.getByTestId("conversation-item").waitFor();
    // A ring reaches only sockets open when it is sent (never replayed): wait for the reloaded page's device socket.
    await until("bob's page connected", () => bob.evaluate(() => (globalThis as unknown as { edgeChat: { connection: string } }).edgeChat.connection === "connected"));
    await alice.getByTestId("call-audio").click();
    await alice.getByTestId("in-call").waitFor();
    await bob.getByTestId("incoming-call").waitFor({ timeout: 10_000 });
    expect(await bob.getByTestId("incoming-call").textContent()).toContain("Incoming voice call");
    await bob.getByTestId("call-decline").click();
    await bob.getByTestId("incoming-call").waitFor({ state: "detached" });
    await alice.getByTestId("in-call").waitFor({ state: "detached", timeout: 10_000 });
    expect(await alice.getByTestId("call-notice").textContent()).toBe("Call declined");
    await until("alice's declined entry", async () => (await entries(alice)).at(-1) === "Declined call");
  });

  it(`an unanswered call stops ringing when missed (${RING_SECONDS} s here)`, async () => {
    await alice.getByTestId("call-audio").click();
    await bob.getByTestId("incoming-call").waitFor({ timeout: 10_000 });
    await bob.getByTestId("incoming-call").waitFor({ state: "detached", timeout: (RING_SECONDS + 10) * 1000 });
    await alice.getByTestId("in-call").waitFor({ state: "detached", timeout: 10_000 });
    await until("alice's missed entry", async () => (await entries(alice)).at(-1) === "Missed call");
    // On Bob's list (he is not in the chat): the call shows as the last message, and is not unread.
    await until("bob's list shows the missed call", async () => (await bob.getByTestId("conversation-item").textContent())?.includes("Missed call"));
    expect(await bob.getByTestId("unread-badge").count()).toBe(0);
    await bob.getByTestId("conversation-item").click();
    await until("bob's three entries", async () => (await entries(bob)).length === 3);
    report.entries = await entries(bob);
    expect(report.entries).toEqual([report.entries[0], "Declined call", "Missed call"]);
    expect(await bob.getByTestId("unread-badge").count()).toBe(0);
  }, 60_000);

  it("stops ringing when the callee answers on another device (answered_elsewhere)", async () => {
    // Bob's second device: an SDK client in Node (no WebRTC there, so it only says accept).
    const { ChatClient, MemoryStorage } = await import("../../client/src/index");
    const bob2 = await ChatClient.login({ baseUrl: server.baseUrl, handle: names.bob, password: PASSWORD, storage: new MemoryStorage() });
    try {
      await bob2.connect();
      let rang = 0;
      bob2.on("call", (call) => {
        rang++;
        void call.accept(null).catch(() => undefined);
      });
      await alice.getByTestId("call-audio").click();
      await until("bob's second device rang", () => rang === 1, 10_000);
      await bob.getByTestId("incoming-call").waitFor({ state: "detached", timeout: 10_000 });
      expect(await bob.getByTestId("in-call").count()).toBe(0);
      expect(await bob.getByTestId("call-notice").textContent()).toBe("Answered on another device");
      // Alice's call was answered: she hangs up.
      await alice.getByTestId("call-hangup").click();
      await alice.getByTestId("in-call").waitFor({ state: "detached" });
      await until("bob's four entries", async () => (await entries(bob)).length === 4);
      expect((await entries(bob)).at(-1)).toMatch(/^Call, \d+:\d\d$/);
    } finally {
      for (const call of bob2.calls.active()) call.end("hangup");
      await bob2.close();
    }
  });

  it("the service worker shows a call push as an Incoming call notification opening the chat", async () => {
    const notifications = await notificationsForPush(browser, server.baseUrl, { type: "call", conversation_id: directId, call_id: "call_test" });
    expect(notifications.map(({ tag: _, ...n }) => n)).toEqual([{ title: "Incoming call", body: "Open edge-chat to answer.", data: { url: `/c/${encodeURIComponent(directId)}` } }]);
  });

  it("had no page errors", () => {
    expect(errors).toEqual([]);
  });
}
