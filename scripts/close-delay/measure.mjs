// Issue 11 finding 7: how long after a hibernatable Durable Object closes a socket (4403) the
// client's close event fires. Start the minimal object: `cd scripts/close-delay && npx wrangler dev
// --port 8799`, then `BASE=http://127.0.0.1:8799 npx node measure.mjs ws:hib:plain:0 ws:hib:plain:1 undici:hib:plain:0 ...`
// (npx node = Node 22, which has the global WebSocket; client ws|undici : accept hib|plain|relay (relay = hibernating
// object behind a Worker that terminates the client's socket itself) : close mode
// plain|send-first|noreply|code1000|timeout|waituntil|bcw : 1 = the client sent one frame first). chromium.mjs does the
// same in Chromium. Results and the cause: README.md in this directory.
import WS from "../../node_modules/ws/index.js";
const base = process.env.BASE;
async function trial(client, accept, mode, pingFirst) {
  const wsUrl = base.replace("http", "ws") + `/?accept=${accept}`;
  const ws = client === "ws" ? new WS(wsUrl) : new WebSocket(wsUrl);
  await new Promise((r, j) => { ws.onopen = r; ws.onerror = j; });
  if (pingFirst) { ws.send("hi"); await new Promise((r) => (ws.onmessage = r)); }
  await new Promise((r) => setTimeout(r, 200));
  let t0;
  const closed = new Promise((r) => (ws.onclose = (e) => r([Date.now() - t0, e.code])));
  t0 = Date.now();
  await fetch(base + `/close?mode=${mode}`);
  const [ms, code] = await Promise.race([closed, new Promise((r) => setTimeout(() => r([">15000", null]), 15000))]);
  console.log(`${client}\t${accept}\t${mode}\tping=${pingFirst}\t${ms} ms\tcode=${code}`);
}
const modes = process.argv.slice(2);
for (const spec of modes) {
  const [client, accept, mode, ping] = spec.split(":");
  await trial(client, accept, mode, ping === "1");
}

