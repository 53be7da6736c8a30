// Same as measure.mjs in Chromium: `BASE=http://127.0.0.1:8799 [ACCEPT=relay] npx node chromium.mjs`.
import { chromium } from "../../node_modules/playwright-core/index.mjs";
const base = process.env.BASE ?? "http://127.0.0.1:8799";
const accept = process.env.ACCEPT ?? "hib";
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless","--no-sandbox","--disable-gpu","--disable-quic","--no-first-run","--disable-background-networking","--disable-component-update","--disable-sync"], headless: true });
const context = await browser.newContext(); const page = await context.newPage();
await page.goto(base + "/close?mode=none").catch(() => {});
for (const ping of [false, true, false]) {
  await page.evaluate(async ([ping, url]) => {
    const ws = new WebSocket(url);
    await new Promise((r) => (ws.onopen = r));
    if (ping) { ws.send("hi"); await new Promise((r) => (ws.onmessage = r)); }
    window.result = null;
    ws.onclose = (e) => { window.result = { at: Date.now(), code: e.code }; };
  }, [ping, base.replace("http", "ws") + "/?accept=" + accept]);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  await fetch(base + "/close?mode=plain");
  await page.waitForFunction(() => window.result !== null, null, { timeout: 20000 });
  const { at, code } = await page.evaluate(() => window.result);
  console.log(`chromium\t${accept}\tping=${ping}\t${at - t0} ms\tcode=${code}`);
}
await browser.close();
