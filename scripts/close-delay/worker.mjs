import { DurableObject } from "cloudflare:workers";
export class O extends DurableObject {
  async fetch(req) {
    const url = new URL(req.url);
    if (url.pathname === "/close") {
      const mode = url.searchParams.get("mode");
      globalThis.noreply = mode === "noreply";
      const code = mode === "code1000" ? 1000 : 4403;
      const doClose = (ws) => {
        if (mode === "send-first") ws.send('{"type":"bye"}');
        ws.close(code, "removed");
      };
      if (mode === "bcw") {
        // Holds the input gate past the client's answer; still ~10 s (README.md here).
        await this.ctx.blockConcurrencyWhile(async () => {
          for (const ws of this.ctx.getWebSockets()) ws.close(4403, "removed");
          await new Promise((r) => setTimeout(r, 300));
        });
        return new Response("ok");
      }
      if (mode === "abort" || mode === "abort-one") {
        // Close (all, or only the first socket), then reset the instance once the client answered.
        const sockets = this.ctx.getWebSockets();
        for (const ws of mode === "abort-one" ? sockets.slice(0, 1) : sockets) ws.close(4403, "removed");
        this.ctx.waitUntil((async () => { await new Promise((r) => setTimeout(r, 300)); try { this.ctx.abort("reset after close"); } catch (e) { console.log("abort threw", String(e)); } })());
        return new Response("ok");
      }
      for (const ws of this.ctx.getWebSockets()) {
        if (mode === "timeout") setTimeout(() => doClose(ws), 0);
        else if (mode === "waituntil") this.ctx.waitUntil((async () => { ws.send("x"); await new Promise((r) => setTimeout(r, 10)); doClose(ws); })());
        else doClose(ws);
      }
      for (const ws of this.plain ?? []) ws.close(4403, "removed");
      console.log("closed at", Date.now() % 100000);
      return new Response("ok");
    }
    const pair = new WebSocketPair();
    if (url.searchParams.get("accept") === "plain") {
      pair[1].accept();
      (this.plain ??= []).push(pair[1]);
    } else {
      this.ctx.acceptWebSocket(pair[1]);
    }
    return new Response(null, { status: 101, webSocket: pair[0] });
  }
  webSocketMessage(ws, m) { ws.send(m); }
  webSocketClose(ws, code) {
    console.log("webSocketClose", code, Date.now() % 100000);
    if (globalThis.noreply) return;
    try { ws.close(code === 1005 ? 1000 : code, "bye"); } catch {}
  }
}
export default {
  async fetch(req, env) {
    const stub = env.O.get(env.O.idFromName("x"));
    if (new URL(req.url).searchParams.get("accept") !== "relay") return stub.fetch(req);
    // accept=relay: the object still accepts its end with hibernation, but this Worker terminates
    // the client's socket itself (accept() on a pair of its own) and copies frames both ways, so
    // the client's connection is not a pass-through of the object's WebSocketPair. Closes at once
    // (see README.md here for why); costs a Worker invocation that lasts as long as the socket.
    const up = (await stub.fetch(req)).webSocket;
    const [client, down] = Object.values(new WebSocketPair());
    up.accept();
    down.accept();
    up.addEventListener("message", (e) => down.send(e.data));
    down.addEventListener("message", (e) => up.send(e.data));
    up.addEventListener("close", (e) => { try { down.close(e.code, e.reason); } catch {} });
    down.addEventListener("close", (e) => { try { up.close(e.code, e.reason); } catch {} });
    return new Response(null, { status: 101, webSocket: client });
  },
};
