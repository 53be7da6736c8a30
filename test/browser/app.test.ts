/**
 * The web app in real Chromium (Debian's /usr/bin/chromium driven by playwright-core; no
 * browser download) against the real local server, as two people would use it: Alice on a
 * desktop-sized window, Bob on a phone-sized one, each in a browser context of their own.
 * A third user, Carol, and Bob's second device are SDK clients in Node.
 *
 * The tests run in order and share the story: sign-up, a direct chat both ways with ticks
 * up to `read`, typing, unread badges, a group made in the app, a send while offline
 * delivered exactly once, reload keeping session and history, and history paged on scroll.
 * Screenshots go to docs/screenshots/ with UPDATE_SCREENSHOTS=1 (the README shows two of
 * them: desktop.png and phone.png), else to $TMPDIR/edge-chat-screenshots.
 */
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from "playwright-core";
import { notificationsForPush } from "./push";
import { sleep, until } from "./wait";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ChatClient, MemoryStorage } from "../../client/src/index";

// wrangler dev hot-reloads on source changes; a snapshot of the tree keeps other people's
// edits from resetting the server mid-run (see test/e2e/server.ts). Read when it loads.
process.env.E2E_SNAPSHOT ??= "1";
const { ROOT, TestServer } = await import("../e2e/server");
type TestServer = import("../e2e/server").TestServer;

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
];
// The README's screenshots are refreshed with UPDATE_SCREENSHOTS=1; other runs write theirs to
// the temporary directory, so that a test run leaves the tree as it was.
const SHOTS = /^(1|true|yes)$/i.test(process.env.UPDATE_SCREENSHOTS ?? "") ? join(ROOT, "docs", "screenshots") : join(tmpdir(), "edge-chat-screenshots");
const PASSWORD = "correct horse battery";


interface Shown {
  seq: string | undefined;
  status: string | undefined;
  text: string;
}

/**
 * Opens the app in a fresh context and waits for the sign-in form. A fresh context has now and
 * then stayed on "Loading…" (the stored session never read): if it does, the page's requests,
 * console and IndexedDB databases are printed before the step fails.
 */
async function openSignedOut(page: Page, who: string): Promise<void> {
  const logs: string[] = [];
  const t0 = Date.now();
  page.on("console", (m) => logs.push(`+${Date.now() - t0} ms ${m.type()} ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`+${Date.now() - t0} ms pageerror ${e.message}`));
  page.on("requestfailed", (r) => logs.push(`+${Date.now() - t0} ms requestfailed ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => logs.push(`+${Date.now() - t0} ms ${r.status()} ${r.url()}`));
  await page.goto("/");
  try {
    await page.getByTestId("auth-handle").waitFor({ timeout: 20_000 });
  } catch {
    // A fresh page of this headless Chromium has been seen to stay on "Loading…" with no
    // error and no log (README, notes): said out loud, then one reload, which has always come up.
    const databases = await page.evaluate(async () => JSON.stringify(await indexedDB.databases())).catch(String);
    const phase = await page.evaluate(() => (globalThis as unknown as { edgeChat?: { phase: string } }).edgeChat?.phase).catch(String);
    console.warn(`[browser] ${who}: still loading after 20 s (phase ${phase}); reloading once. Page log:\n${logs.join("\n")}\nIndexedDB: ${databases}`);
    await page.reload();
    await page.getByTestId("auth-handle").waitFor({ timeout: 20_000 });
  }
}

/** Seqs one after another (an encrypted conversation's MLS commit takes seq 1 and is not shown). */
const consecutive = (list: Shown[]) => list.every((m, i) => i === 0 || Number(m.seq) === Number(list[i - 1]!.seq) + 1);

/** Every message on screen: its data-seq, data-status and text. */
function shown(page: Page): Promise<Shown[]> {
  return page.getByTestId("message").evaluateAll((els) =>
    els.map((e) => ({
      seq: (e as HTMLElement).dataset.seq,
      status: (e as HTMLElement).dataset.status,
      text: e.querySelector("[data-testid=message-text]")?.textContent ?? "",
    })),
  );
}

const withText = (page: Page, text: string): Locator => page.getByTestId("message").filter({ has: page.getByTestId("message-text").getByText(text, { exact: true }) });

describe.skipIf(!existsSync(CHROMIUM))("web app in Chromium", () => {
  let server: TestServer;
  let browser: Browser;
  let desktop: BrowserContext;
  let phone: BrowserContext;
  let alice: Page;
  let bob: Page;
  let carol: ChatClient;
  const errors: string[] = [];
  const suffix = Date.now().toString(36).slice(-6);
  const names = { alice: `alice_${suffix}`, bob: `bob_${suffix}`, carol: `carol_${suffix}` };
  const shownAs = { alice: "Alice Martin", bob: "Bob Chen", carol: "Carol Diaz" };
  let directId = "";
  let groupId = "";

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    server = await TestServer.start();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const common = { baseURL: server.baseUrl, locale: "en-GB", timezoneId: "Europe/Amsterdam", colorScheme: "light" as const };
    desktop = await browser.newContext({ ...common, viewport: { width: 1280, height: 800 } });
    phone = await browser.newContext({ ...common, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    alice = await desktop.newPage();
    bob = await phone.newPage();
    for (const [who, page] of [["alice", alice], ["bob", bob]] as const) {
      page.on("pageerror", (err) => errors.push(`${who}: ${err.message}`));
    }
  }, 180_000);

  afterAll(async () => {
    await carol?.close();
    await browser?.close();
    await server?.dispose();
  }, 60_000);

  // A failed step leaves both screens behind, for the report.
  afterEach(async (ctx) => {
    if (ctx.task.result?.state !== "fail") return;
    const dir = join(tmpdir(), "edge-chat-browser-failures");
    mkdirSync(dir, { recursive: true });
    const name = ctx.task.name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60);
    await alice?.screenshot({ path: join(dir, `${name}-alice.png`) }).catch(() => undefined);
    await bob?.screenshot({ path: join(dir, `${name}-bob.png`) }).catch(() => undefined);
    console.warn(`[browser] screenshots of the failed step in ${dir}; server log ${server?.logFile}`);
  });

  async function signUp(page: Page, handle: string, displayName: string) {
    await openSignedOut(page, handle);
    await page.getByTestId("auth-handle").fill(handle);
    await page.getByTestId("auth-password").fill(PASSWORD);
    await page.getByTestId("auth-display-name").fill(displayName);
    await page.getByTestId("auth-register").click();
    await page.getByTestId("new-direct").waitFor();
  }

  async function send(page: Page, text: string) {
    await page.getByTestId("composer").fill(text);
    await page.getByTestId("composer").press("Enter");
  }

  it("signs up two people", async () => {
    // The sign-in screen first: it must be usable by label too.
    await alice.goto("/");
    await expect(alice.getByLabel("Handle").count()).resolves.toBe(1);
    await expect(alice.getByLabel("Password").count()).resolves.toBe(1);
    await signUp(alice, names.alice, shownAs.alice);
    await signUp(bob, names.bob, shownAs.bob);
    await alice.getByText("No conversations yet.").waitFor();
    carol = await ChatClient.register({ baseUrl: server.baseUrl, handle: names.carol, password: PASSWORD, displayName: shownAs.carol, storage: new MemoryStorage() });
  });

  it("starts a direct chat by handle; the message is delivered and shows unread on the other side", async () => {
    await alice.getByTestId("new-direct").click();
    await alice.getByTestId("new-direct-handle").fill(names.bob);
    await alice.getByTestId("new-direct-start").click();
    await until("alice's chat view", () => alice.url().includes("/c/"));
    directId = decodeURIComponent(alice.url().split("/c/")[1]!);

    await send(alice, "Hi Bob!");
    await send(alice, "Are you around this weekend?");
    // Bob is online (device socket), so both reach `delivered`; nobody has read them yet.
    await until("alice's messages delivered", async () => {
      const mine = await shown(alice);
      return mine.length === 2 && mine.every((m) => m.status === "delivered") && consecutive(mine);
    });

    const item = bob.getByTestId("conversation-item");
    await until("bob's conversation item", async () => (await item.count()) === 1);
    await until("bob's unread badge to say 2", async () => (await item.getByTestId("unread-badge").textContent()) === "2");
    await until("the title: alice's display name", async () => (await item.getByTestId("conversation-title").textContent()) === shownAs.alice);
  });

  it("reads, replies, shows typing, and ticks reach read both ways", async () => {
    await bob.getByTestId("conversation-item").click();
    await until("bob sees both messages", async () => (await shown(bob)).length === 2);
    // Incoming messages carry a seq and no status.
    expect((await shown(bob)).map((m) => m.status)).toEqual([undefined, undefined]);
    expect(consecutive(await shown(bob))).toBe(true);
    await until("alice's messages read", async () => (await shown(alice)).every((m) => m.status === "read"));

    // Typing: key by key, as a person types.
    await bob.getByTestId("composer").pressSequentially("Sure, what's up?", { delay: 40 });
    await alice.getByTestId("typing-indicator").waitFor({ timeout: 10_000 });
    await expect(alice.getByTestId("typing-indicator").textContent()).resolves.toContain(shownAs.bob);
    await bob.getByTestId("send-button").click();
    await alice.getByTestId("typing-indicator").waitFor({ state: "detached", timeout: 10_000 });
    await until("alice sees the reply", async () => (await withText(alice, "Sure, what's up?").count()) === 1);
    // Alice has the chat open and visible: Bob's message is read at once.
    await until("bob's reply read", async () => (await withText(bob, "Sure, what's up?").getAttribute("data-status")) === "read");

    await send(alice, "Hiking on Saturday — want to join?");
    await send(bob, "Count me in!");
    await until("both see five messages", async () => (await shown(alice)).length === 5 && (await shown(bob)).length === 5);
    await until("everything read", async () => {
      const a = (await shown(alice)).filter((m) => m.status !== undefined);
      const b = (await shown(bob)).filter((m) => m.status !== undefined);
      return a.length === 3 && b.length === 2 && [...a, ...b].every((m) => m.status === "read");
    });
    expect(consecutive(await shown(alice))).toBe(true);
    expect((await shown(bob)).map((m) => m.seq)).toEqual((await shown(alice)).map((m) => m.seq));
  });

  it("lists conversations most recent first, with unread badges; makes a group", async () => {
    // Carol (an SDK client) writes to Alice while Alice is in Bob's chat.
    const user = await carol.findUser(names.alice);
    const withAlice = await carol.createDirect(user!.user_id);
    await carol.sendText(withAlice.conversation_id, "Are we still on for Friday?");
    const items = alice.getByTestId("conversation-item");
    await until("carol's conversation first in alice's list", async () => (await items.count()) === 2 && (await items.first().getByTestId("conversation-title").textContent()) === shownAs.carol);
    await until("its unread badge", async () => (await items.first().getByTestId("unread-badge").textContent()) === "1");
    // Bob's chat is open and read: no badge there.
    expect(await items.nth(1).getByTestId("unread-badge").count()).toBe(0);

    // A group, made in the app.
    await alice.getByTestId("new-group").click();
    await alice.getByLabel("Group name").fill("Saturday hike");
    await alice.getByLabel("Members").fill(`${names.bob}, ${names.carol}`);
    await alice.getByTestId("new-group-create").click();
    await until("the group open", async () => alice.url().includes("/c/") && !alice.url().includes(directId));
    groupId = decodeURIComponent(alice.url().split("/c/")[1]!);
    await send(alice, "Meet at the station at 8:30");
    await until("the group message sent", async () => ["sent", "delivered", "read"].includes((await withText(alice, "Meet at the station at 8:30").getAttribute("data-status")) ?? ""));
    await until("the group first in the list", async () => (await items.first().getAttribute("data-conversation-id")) === groupId);
    await carol.sendText(groupId, "I'll bring snacks");
    await until("alice sees carol's group message", async () => (await withText(alice, "I'll bring snacks").count()) === 1);

    // Bob, on the phone, goes back to his list: the group on top with its badge, Alice's chat read.
    await bob.getByTestId("back").click();
    const bobItems = bob.getByTestId("conversation-item");
    await until("bob's list: group first", async () => (await bobItems.count()) === 2 && (await bobItems.first().getAttribute("data-conversation-id")) === groupId);
    await until("bob's group badge", async () => (await bobItems.first().getByTestId("unread-badge").textContent()) === "2");
    expect(await bobItems.nth(1).getByTestId("unread-badge").count()).toBe(0);
    await bob.screenshot({ path: join(SHOTS, "phone-list.png") });

    // Screenshots for the README: Alice's desktop on Bob's chat, Bob's phone in that chat.
    await items.filter({ has: alice.getByText(shownAs.bob, { exact: true }) }).click();
    await until("alice back in bob's chat", async () => (await shown(alice)).length === 5);
    await bobItems.nth(1).click();
    await until("bob in alice's chat", async () => (await shown(bob)).length === 5);
    await bob.getByTestId("composer").pressSequentially("See you", { delay: 30 });
    await alice.getByTestId("typing-indicator").waitFor({ timeout: 10_000 });
    await alice.screenshot({ path: join(SHOTS, "desktop.png") });
    await bob.getByTestId("composer").fill("");
    await bob.screenshot({ path: join(SHOTS, "phone.png") });
  });

  it("sends while offline: pending, then delivered exactly once when back online", async () => {
    await desktop.setOffline(true);
    await send(alice, "Sent from a tunnel");
    const offline = withText(alice, "Sent from a tunnel");
    await offline.waitFor();
    await expect(offline.getAttribute("data-status")).resolves.toBe("pending");
    await alice.getByText("You are offline.", { exact: false }).waitFor();
    await sleep(2_000);
    // Still pending, and Bob has nothing yet.
    await expect(offline.getAttribute("data-status")).resolves.toBe("pending");
    expect(await withText(bob, "Sent from a tunnel").count()).toBe(0);
    await alice.screenshot({ path: join(SHOTS, "desktop-offline.png") });

    await desktop.setOffline(false);
    await until("bob gets it", async () => (await withText(bob, "Sent from a tunnel").count()) === 1, 45_000);
    await until("alice sees it delivered", async () => ["delivered", "read"].includes((await offline.getAttribute("data-status")) ?? ""), 45_000);
    await alice.getByText("You are offline.", { exact: false }).waitFor({ state: "detached" });
    // Exactly once, on both sides, also a moment later (a retry must not duplicate it).
    await sleep(2_000);
    expect(await withText(alice, "Sent from a tunnel").count()).toBe(1);
    expect(await withText(bob, "Sent from a tunnel").count()).toBe(1);
    const a = await shown(alice);
    const b = await shown(bob);
    expect(a).toHaveLength(6);
    expect(consecutive(a)).toBe(true);
    expect(b.map((m) => m.seq)).toEqual(a.map((m) => m.seq));
    expect(a.map((m) => m.text)).toEqual(b.map((m) => m.text));
  });

  it("keeps the session and the history across a reload", async () => {
    const before = await shown(alice);
    await alice.reload();
    await alice.getByTestId("new-direct").waitFor();
    expect(await alice.getByTestId("auth-handle").count()).toBe(0);
    // The URL kept the open conversation.
    await until("history after reload", async () => JSON.stringify((await shown(alice)).map((m) => [m.seq, m.text])) === JSON.stringify(before.map((m) => [m.seq, m.text])));
    // Alice's own four, with their ticks (kept in IndexedDB with the sync state).
    await until("ticks after reload", async () => {
      const mine = (await shown(alice)).filter((m) => m.status);
      return mine.length === 4 && mine.every((m) => m.status === "read" || m.status === "delivered");
    });
    // And still live after it.
    await send(bob, "Back at home?");
    await until("a live message after reload", async () => (await withText(alice, "Back at home?").count()) === 1);
  });

  it("signs in on a second device, which has the list and the history; signs out", async () => {
    const second = await browser.newContext({ baseURL: server.baseUrl, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    try {
      const page = await second.newPage();
      page.on("pageerror", (err) => errors.push(`alice (second device): ${err.message}`));
      await openSignedOut(page, "alice (second device)");
      await page.getByTestId("auth-handle").fill(names.alice);
      await page.getByTestId("auth-password").fill("not the password");
      await page.getByTestId("auth-login").click();
      await until("the sign-in error", async () => ((await page.getByTestId("auth-error").textContent()) ?? "").includes("Wrong handle or password"));
      await page.getByTestId("auth-password").fill(PASSWORD);
      await page.getByTestId("auth-password").press("Enter");
      await page.getByTestId("new-direct").waitFor();
      const items = page.getByTestId("conversation-item");
      await until("three conversations", async () => (await items.count()) === 3);
      // The same unread count as on the first device: it is the user's, not the device's.
      await until("carol's badge", async () => (await items.filter({ has: page.getByText(shownAs.carol, { exact: true }) }).getByTestId("unread-badge").textContent()) === "1");
      await items.filter({ has: page.getByText(shownAs.bob, { exact: true }) }).click();
      // The seven messages are there, but encrypted before this device existed: not readable
      // here (MLS gives a later device no keys to the past); what comes after is.
      await until("the direct chat's history", async () => {
        const seen = await shown(page);
        return seen.length === 7 && consecutive(seen);
      });
      expect((await shown(page)).filter((m) => m.text?.includes("Hiking on Saturday"))).toEqual([]);
      await page.getByTestId("encryption-lock").click();
      await page.getByTestId("group-code").waitFor();
      await until("this device among the fingerprints", async () => (await page.getByTestId("fingerprint").filter({ hasText: "(this device)" }).count()) === 1);
      const code = await page.getByTestId("group-code").textContent();
      await send(bob, "Hello, new device");
      await until("the new device reads what comes after its join", async () => (await withText(page, "Hello, new device").count()) === 1);
      // The first device shows the same group code once it has applied this device's join.
      await alice.getByTestId("encryption-lock").click();
      await until("the same group code on alice's first device", async () => {
        await alice.getByTestId("encryption-lock").click();
        await alice.getByTestId("encryption-lock").click();
        return (await alice.getByTestId("group-code").textContent()) === code;
      });
      await alice.getByTestId("encryption-lock").click();
      await page.getByTestId("back").click();
      // The list and its header fit the phone's width (a wider header once pushed sign-out off screen).
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await page.getByTestId("logout").click();
      await page.getByTestId("auth-handle").waitFor();
      await page.reload();
      await page.getByTestId("auth-handle").waitFor();
    } finally {
      await second.close();
    }
    // The first device is still signed in and live.
    await send(bob, "Still there?");
    await until("alice's first device still live", async () => (await withText(alice, "Still there?").count()) === 1);
  });

  it("pages history when scrolled to the top", async () => {
    // Carol fills the group while Alice is elsewhere: 60 messages, then Alice reloads (nothing loaded) and opens it.
    for (let i = 1; i <= 60; i++) await carol.sendText(groupId, `numbered message ${i}`);
    const items = alice.getByTestId("conversation-item");
    const group = items.filter({ has: alice.getByText("Saturday hike", { exact: true }) });
    // Unread: the 60 (Alice read the earlier ones; her own never count).
    await until("the group's unread count", async () => (await group.getByTestId("unread-badge").textContent()) === "60", 30_000);
    await alice.reload();
    await alice.getByTestId("new-direct").waitFor();
    await until("group badge after reload", async () => (await group.getByTestId("unread-badge").textContent()) === "60", 30_000);
    await group.click();
    // The newest page only.
    const total = 62;
    await until("the newest page", async () => (await shown(alice)).length >= 40);
    expect((await shown(alice)).length).toBeLessThan(total);
    expect((await shown(alice)).at(-1)?.text).toBe("numbered message 60");
    // Scroll to the top: older pages come in, in order, until the first message.
    await until(
      "every message",
      async () => {
        await alice.getByTestId("message-list").evaluate((el) => el.scrollTo({ top: 0 }));
        return (await shown(alice)).length === total;
      },
      30_000,
    );
    // Every message in seq order, none missing: the seqs the server holds, but for MLS commits
    // (the SDK consumes those; carol's own join by external commit is one of them).
    const stored: string[] = [];
    for (let after = 0; ; ) {
      const page = await carol.request<{ messages: { seq: number; kind: string }[] }>("GET", `/v1/conversations/${encodeURIComponent(groupId)}/messages`, undefined, { after_seq: after, limit: 200 });
      stored.push(...page.messages.filter((m) => m.kind !== "mls_commit").map((m) => String(m.seq)));
      if (page.messages.length < 200) break;
      after = page.messages.at(-1)!.seq;
    }
    expect((await shown(alice)).map((m) => m.seq)).toEqual(stored);
    expect((await shown(alice))[0]?.text).toBe("Meet at the station at 8:30");
    await until("the badge cleared", async () => (await group.getByTestId("unread-badge").count()) === 0);
  });

  it("sends a photo and a file: the other side sees the image and downloads the file (section 9)", async () => {
    await alice.goto(`/c/${encodeURIComponent(directId)}`);
    await bob.goto(`/c/${encodeURIComponent(directId)}`);
    await alice.getByTestId("composer").waitFor();
    const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==", "base64");
    await alice.getByTestId("attach-input").setInputFiles({ name: "dot.png", mimeType: "image/png", buffer: png });
    // Fetched with the token into a blob URL, and decoded: a real image on both screens.
    for (const page of [alice, bob]) {
      await until("the image shown", () =>
        page.getByTestId("message-image").evaluateAll((imgs) => imgs.some((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth === 1)),
      );
    }
    const pdf = Buffer.from("%PDF-1.4\n% edge-chat media test\n");
    await alice.getByTestId("attach-input").setInputFiles({ name: "notes.pdf", mimeType: "application/pdf", buffer: pdf });
    const link = bob.getByTestId("message-file").filter({ hasText: "notes.pdf" });
    await until("the file's link at bob", async () => (await link.count()) === 1);
    const [download] = await Promise.all([bob.waitForEvent("download"), link.click()]);
    expect(download.suggestedFilename()).toBe("notes.pdf");
    const { readFileSync } = await import("node:fs");
    expect(readFileSync(await download.path())).toEqual(pdf);
    await until("alice's uploads done", async () => (await alice.getByTestId("upload").count()) === 0);
    // The list's preview names the file.
    await until("the list preview", async () => (await alice.getByTestId("conversation-item").filter({ hasText: "📎 notes.pdf" }).count()) === 1);
  });

  it("says a media message's push is an attachment (service worker)", async () => {
    const notifications = await notificationsForPush(browser, server.baseUrl, { type: "message", conversation_id: directId, seq: 8, kind: "media" });
    expect(notifications).toEqual([{ title: "📎 New attachment", tag: directId, body: "Open edge-chat to see it.", data: { url: `/c/${encodeURIComponent(directId)}` } }]);
  });

  it("shows a Web Push as a notification naming the conversation (service worker)", async () => {
    const notifications = await notificationsForPush(browser, server.baseUrl, { type: "message", conversation_id: directId, seq: 7 });
    expect(notifications).toEqual([{ title: "New message", tag: directId, body: "Open edge-chat to read it.", data: { url: `/c/${encodeURIComponent(directId)}` } }]);
  });

  it("has the section 16 controls and no page errors", async () => {
    for (const id of ["composer", "send-button", "attach-input", "new-direct"]) expect(await alice.getByTestId(id).count(), id).toBe(1);
    // Media (section 9): the input takes files.
    expect(await alice.getByTestId("attach-input").isDisabled()).toBe(false);
    expect(await alice.getByTestId("attach-input").getAttribute("type")).toBe("file");
    // The composer and the controls are labelled for screen readers.
    expect(await alice.getByLabel("Message", { exact: true }).count()).toBe(1);
    expect(await alice.getByRole("button", { name: "Send" }).count()).toBe(1);
    // The service worker that shows Web Push notifications is installed and active.
    await expect(alice.evaluate(async () => (await navigator.serviceWorker.ready).active?.scriptURL)).resolves.toMatch(/\/sw\.js$/);
    expect(errors).toEqual([]);
  });
});
