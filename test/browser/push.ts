/**
 * Hands a Web Push payload to the app's service worker through the DevTools protocol, as
 * Chromium would after decrypting one (it cannot subscribe here: no push service, and
 * contexts are incognito), with no window of the app open; answers the notifications shown.
 */
import type { Browser } from "playwright-core";
import { sleep, until } from "./wait";

export interface ShownNotification {
  title: string;
  tag: string;
  body: string;
  data: unknown;
}

export async function notificationsForPush(browser: Browser, baseUrl: string, payload: unknown): Promise<ShownNotification[]> {
  const context = await browser.newContext({ baseURL: baseUrl });
  try {
    await context.grantPermissions(["notifications"], { origin: baseUrl });
    const page = await context.newPage();
    await page.goto("/");
    await page.evaluate(async () => void (await navigator.serviceWorker.ready));
    const cdp = await context.newCDPSession(page);
    const registrations: { registrationId: string; scopeURL: string }[] = [];
    cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => registrations.push(...e.registrations));
    await cdp.send("ServiceWorker.enable");
    const registration = await until("the service worker registration", () => registrations.find((r) => r.scopeURL === `${baseUrl}/`));
    await page.goto("about:blank");
    await cdp.send("ServiceWorker.deliverPushMessage", { origin: baseUrl, registrationId: registration.registrationId, data: JSON.stringify(payload) });
    await sleep(1_000);
    await page.goto("/");
    return await page.evaluate(async () =>
      (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, tag: n.tag, body: n.body, data: n.data as unknown })),
    );
  } finally {
    await context.close();
  }
}
