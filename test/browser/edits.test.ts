/**
 * Section 13 in the web app (real Chromium against the real local server): Alice in the
 * browser, Bob an SDK client in Node. Bob's reaction shows under Alice's message; Alice edits
 * it (the "edited" marker) and deletes it (the placeholder) from the message's actions, and
 * Bob gets each change as `updated`.
 */
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatClient, MemoryStorage, type ChatMessage } from "../../client/src/index";
import { until } from "./wait";

process.env.E2E_SNAPSHOT ??= "1";
const { TestServer } = await import("../e2e/server");
type TestServer = import("../e2e/server").TestServer;

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const PASSWORD = "correct horse battery";

describe.skipIf(!existsSync(CHROMIUM))("edits, deletes and reactions in the web app", () => {
  let server: TestServer;
  let browser: Browser;
  let alice: Page;
  let bob: ChatClient;
  const errors: string[] = [];
  const suffix = Date.now().toString(36).slice(-6);

  beforeAll(async () => {
    server = await TestServer.start();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"], headless: true });
    alice = await (await browser.newContext({ baseURL: server.baseUrl, viewport: { width: 1280, height: 800 } })).newPage();
    alice.on("pageerror", (err) => errors.push(err.message));
  }, 180_000);

  afterAll(async () => {
    await bob?.close();
    await browser?.close();
    await server?.dispose();
  }, 60_000);

  it("shows a reaction, edits with the marker, deletes with the placeholder; the other side gets each change", async () => {
    bob = await ChatClient.register({ baseUrl: server.baseUrl, handle: `ebob_${suffix}`, password: PASSWORD, storage: new MemoryStorage() });
    const updates: ChatMessage[] = [];
    bob.on("updated", (m) => updates.push(m));
    await bob.connect();

    await alice.goto("/");
    await alice.getByTestId("auth-handle").fill(`ealice_${suffix}`);
    await alice.getByTestId("auth-password").fill(PASSWORD);
    await alice.getByTestId("auth-register").click();
    await alice.getByTestId("new-direct").click();
    await alice.getByTestId("new-direct-handle").fill(`ebob_${suffix}`);
    await alice.getByTestId("new-direct-start").click();
    await until("alice's chat view", () => alice.url().includes("/c/"));
    const conversationId = decodeURIComponent(alice.url().split("/c/")[1]!);
    await alice.getByTestId("composer").fill("first words");
    await alice.getByTestId("composer").press("Enter");
    const message = alice.getByTestId("message").filter({ hasText: "first words" });
    // The conversation is encrypted (the default): its MLS commit is seq 1, the message seq 2.
    await until("the message is sent", async () => (await message.getAttribute("data-seq")) === "2");

    await bob.react(conversationId, 2, "🎉");
    await message.getByTestId("message-reactions").getByText("🎉").waitFor();

    alice.once("dialog", (dialog) => void dialog.accept("better words"));
    await message.hover();
    await message.getByTestId("edit-button").click();
    const edited = alice.getByTestId("message").filter({ hasText: "better words" });
    await edited.getByText("edited").waitFor();
    await until("bob's update for the edit", () => updates.some((m) => m.text === "better words"));

    alice.once("dialog", (dialog) => void dialog.accept());
    await edited.hover();
    await edited.getByTestId("delete-button").click();
    await alice.getByTestId("message").filter({ hasText: "Message deleted" }).waitFor();
    await until("bob's update for the delete", () => updates.some((m) => m.deleted));
    expect(await alice.getByTestId("message-text").allTextContents()).toEqual(["Message deleted"]);
    // the list shows the deleted last message as deleted too
    await until("the list preview", async () => ((await alice.getByTestId("conversation-item").first().textContent()) ?? "").includes("Message deleted"));
    expect(errors).toEqual([]);
  }, 120_000);
});
