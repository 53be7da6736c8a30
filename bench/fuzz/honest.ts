/**
 * Honest clients: each honest user keeps sending messages into its conversations for the
 * whole run, over HTTP and over its conversation sockets by turns, under the send rate
 * limit, and now and then marks what it has read. Any failure of theirs is a disturbance.
 */
import { cmid as newCmid, type Api } from "../../test/e2e/client.ts";
import type { Ledger } from "./ledger.ts";
import { ODD_TEXT } from "./values.ts";
import type { Honest, World } from "./world.ts";

export interface HonestSent {
  conv: string;
  sender: string;
  cmid: string;
  content: string;
  seq: number;
  messageId: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class HonestTraffic {
  readonly sent: HonestSent[] = [];
  /** Highest read marker each honest user set, by `user|conv`. */
  readonly markedRead = new Map<string, number>();
  attempts = 0;
  private stopped = false;
  private loops: Promise<void>[] = [];

  private readonly world: World;
  private readonly api: Api;
  private readonly ledger: Ledger;
  private readonly intervalMs: number;

  constructor(world: World, api: Api, ledger: Ledger, intervalMs: number) {
    this.world = world;
    this.api = api;
    this.ledger = ledger;
    this.intervalMs = intervalMs;
  }

  start(): void {
    this.loops = this.world.honest.map((h, i) => this.loop(h, i));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  private disturbed(h: Honest, detail: string): void {
    this.ledger.add("disturbed", "honest", `${h.s.handle}: ${detail}`, undefined, h.s.user_id);
  }

  private async loop(h: Honest, offset: number): Promise<void> {
    // Stagger the users so their sends interleave.
    await sleep((offset * this.intervalMs) / Math.max(1, this.world.honest.length));
    for (let n = 0; !this.stopped; n++) {
      const started = Date.now();
      const conv = h.convs[n % h.convs.length]!;
      const viaWs = Math.floor(n / h.convs.length) % 2 === 1;
      const id = newCmid(`honest-${h.index}-${n}`);
      const content = n % 5 === 4 ? `honest ${h.index} #${n} ${ODD_TEXT[n % ODD_TEXT.length]}` : `honest ${h.index} #${n}`;
      this.attempts += 1;
      try {
        const message = viaWs ? await this.sendWs(h, conv, id, content) : await this.sendHttp(h, conv, id, content);
        if (message) {
          this.sent.push({ conv, sender: h.s.user_id, cmid: id, content, seq: message.seq, messageId: message.message_id });
          this.ledger.accept(conv, h.s.user_id, id, message, content, "honest");
          this.world.honestCmids.push(id);
        }
      } catch (err) {
        this.disturbed(h, `send ${viaWs ? "over the socket" : "over HTTP"} failed: ${(err as Error).message.slice(0, 300)}`);
      }
      if (n % 4 === 3) await this.markRead(h, conv);
      await sleep(Math.max(50, this.intervalMs - (Date.now() - started)));
    }
  }

  private async sendHttp(h: Honest, conv: string, id: string, content: string): Promise<any> {
    const res = await this.api.send(h.s, conv, id, content);
    this.ledger.requests += 1;
    if (res.status !== 201) {
      this.disturbed(h, `HTTP send answered ${res.status}: ${res.text.slice(0, 200)}`);
      return null;
    }
    const m = res.json;
    if (m.content !== content || m.client_message_id !== id || m.sender_id !== h.s.user_id) this.disturbed(h, `HTTP send acknowledged a different message: ${res.text.slice(0, 200)}`);
    return m;
  }

  private async sendWs(h: Honest, conv: string, id: string, content: string): Promise<any> {
    let ws = h.convWs.get(conv)!;
    if (!ws.isOpen) {
      this.disturbed(h, `conversation socket on ${conv} found closed (${ws.closeInfo?.code} ${ws.closeInfo?.reason}); reopening`);
      ws = await this.api.convSocket(h.s, conv);
      h.convWs.set(conv, ws);
    }
    const from = ws.frames.length;
    ws.send({ type: "send", client_message_id: id, kind: "text", content });
    this.ledger.frames += 1;
    const reply = await ws.waitFor((f) => (f?.type === "sent" && f.client_message_id === id) || (f?.type === "error" && f.ref === id), 20_000, `sent ${id}`, from);
    if (reply.type !== "sent") {
      this.disturbed(h, `socket send answered ${JSON.stringify(reply).slice(0, 200)}`);
      return null;
    }
    const m = reply.message;
    if (m.content !== content || m.sender_id !== h.s.user_id) this.disturbed(h, `socket send acknowledged a different message: ${JSON.stringify(reply).slice(0, 200)}`);
    return m;
  }

  /** Marks read up to the highest seq its device socket has shown for `conv`. */
  private async markRead(h: Honest, conv: string): Promise<void> {
    let top = 0;
    for (const f of h.sync.frames) if (f?.type === "message" && f.message?.conversation_id === conv && f.message.seq > top) top = f.message.seq;
    if (top === 0) return;
    try {
      const res = await this.api.post(`/conversations/${conv}/read`, h.s.token, { up_to_seq: top });
      this.ledger.requests += 1;
      if (res.status !== 204) {
        this.disturbed(h, `read marker answered ${res.status}: ${res.text.slice(0, 200)}`);
        return;
      }
      const key = `${h.s.user_id}|${conv}`;
      this.markedRead.set(key, Math.max(this.markedRead.get(key) ?? 0, top));
    } catch (err) {
      this.disturbed(h, `read marker failed: ${(err as Error).message}`);
    }
  }
}
