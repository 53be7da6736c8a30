/** Runs one case against the server and judges the answer (the per-case oracle). */
import WebSocket from "ws";
import { cmid as newCmid, type Api, type Socket } from "../../test/e2e/client.ts";
import { describeCase, type Case, type ExpiringCase, type FloodCase, type HandshakeCase, type HttpCase, type HttpResult, type OversizedCase, type WsFrameCase } from "./cases.ts";
import { CLOSE_UNAUTHORIZED, errorBodyProblem, errorFrameProblem } from "./contract.ts";
import { Ledger } from "./ledger.ts";
import { mangleLoneSurrogates } from "./values.ts";
import { signToken, type Attacker, type World } from "./world.ts";

export const HTTP_TIMEOUT_MS = 30_000;
export const WS_TIMEOUT_MS = 40_000;

/** A probe that goes through the object (the exact `{"type":"ping"}` is answered by the runtime, out of order). */
const PROBE = '{"type":"ping","probe":1}';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One lock per socket: a socket's cases run one at a time, so every answer is attributable. */
class Lock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work, work);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

interface Slot {
  lock: Lock;
  get: () => Socket;
  set: (s: Socket) => void;
  reopen: () => Promise<Socket>;
}

export class Runner {
  private readonly slots = new Map<string, Slot>();
  private readonly world: World;
  private readonly api: Api;
  private readonly ledger: Ledger;
  private readonly floodSize: number;

  constructor(world: World, api: Api, ledger: Ledger, opts: { floodSize: number }) {
    this.world = world;
    this.api = api;
    this.ledger = ledger;
    this.floodSize = opts.floodSize;
  }

  private slot(a: Attacker, which: WsFrameCase["socket"]): Slot {
    const key = `${a.index}:${which}`;
    let s = this.slots.get(key);
    if (!s) {
      const field = which === "device" ? "sync" : which === "own" ? "ownWs" : "mixedWs";
      s = {
        lock: new Lock(),
        get: () => a[field],
        set: (sock) => {
          a[field] = sock;
        },
        reopen: () => (which === "device" ? this.api.sync(a.s) : this.api.convSocket(a.s, which === "own" ? a.ownGroup : this.world.mixed)),
      };
      this.slots.set(key, s);
    }
    return s;
  }

  async run(c: Case): Promise<void> {
    const stats = this.ledger.stats(c.category);
    stats.cases += 1;
    const t0 = Date.now();
    try {
      switch (c.kind) {
        case "http":
          return await this.http(c);
        case "ws":
          return await this.ws(c);
        case "handshake":
          return await this.handshake(c);
        case "expiring":
          return await this.expiring(c);
        case "oversized":
          return await this.oversized(c);
        case "flood":
          return await this.flood(c);
      }
    } finally {
      const ms = Date.now() - t0;
      stats.ms += ms;
      if (ms > stats.maxMs) {
        stats.maxMs = ms;
        stats.slowest = describeCase(c);
      }
    }
  }

  // ---- HTTP ---------------------------------------------------------------------

  private async http(c: HttpCase): Promise<void> {
    const init: RequestInit & { duplex?: "half" } = { method: c.method, headers: c.headers, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) };
    if (typeof c.body === "string" || c.body instanceof Uint8Array) init.body = c.body as BodyInit;
    else if (c.body && "streamBytes" in c.body) {
      let left = c.body.streamBytes;
      const chunk = new Uint8Array(256 * 1024).fill(0x20);
      init.body = new ReadableStream<Uint8Array>({
        pull(ctrl) {
          if (left <= 0) return ctrl.close();
          const n = Math.min(left, chunk.length);
          left -= n;
          ctrl.enqueue(chunk.subarray(0, n));
        },
      });
      init.duplex = "half";
    }
    this.ledger.requests += 1;
    let res: HttpResult;
    try {
      const r = await fetch(`${this.world.baseUrl}${c.path}`, init);
      const text = await r.text();
      let json: any;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = undefined;
      }
      res = { status: r.status, headers: r.headers, text, json };
    } catch (err) {
      const e = err as Error & { cause?: Error };
      const timedOut = e.name === "TimeoutError" || e.name === "AbortError";
      this.ledger.answer(c.category, timedOut ? "timeout" : "network-error");
      this.ledger.add("crash", c.category, timedOut ? `request hung (no answer in ${HTTP_TIMEOUT_MS} ms)` : `request failed: ${e.message} ${e.cause?.message ?? ""}`, describeCase(c));
      return;
    }
    this.ledger.answer(c.category, String(res.status));
    const ok = res.status >= 200 && res.status < 300;

    if (c.send && typeof c.send.cmid === "string") {
      if (ok) this.ledger.accept(c.send.conv, c.send.sender, c.send.cmid, res.json, c.send.content, c.category);
      else this.ledger.reject(c.send.conv, c.send.sender, c.send.cmid);
    } else if (ok && c.actor && /\/messages$/.test(c.path.split("?")[0]!) && c.method === "POST" && res.json?.client_message_id !== undefined) {
      // A send whose body the oracle could not read (bytes): what it stored still counts as acknowledged.
      this.ledger.accept(res.json.conversation_id, c.actor, res.json.client_message_id, res.json, undefined, c.category);
    }
    if (c.register) {
      this.ledger.registers.push({ handle: c.register.handle, display_name: c.register.display_name, accepted: ok, acceptable: c.register.acceptable, userId: ok ? res.json?.user_id : undefined });
    }
    if (ok && c.createsConversation && typeof res.json?.conversation_id === "string" && c.actor) {
      this.ledger.createdConversations.push({ conv: res.json.conversation_id, owner: c.actor });
    }

    if (res.status >= 500) {
      const devServer = res.json === undefined && /^Error: Network connection lost\./.test(res.text) && /miniflare|entry\.worker/.test(res.text);
      this.ledger.add(devServer ? "devserver" : "crash", c.category, `HTTP ${res.status}: ${res.text.slice(0, 200)}`, describeCase(c));
      return;
    }
    if (!ok) {
      const problem = errorBodyProblem(res.status, res.text, res.headers);
      if (problem) this.ledger.add("violation", c.category, problem, describeCase(c));
    }
    if (res.status === 204 && res.text !== "") this.ledger.add("violation", c.category, `204 with a body: ${res.text.slice(0, 100)}`, describeCase(c));
    if (ok && c.post) {
      for (const p of c.post(res)) this.ledger.add(p.kind, c.category, p.detail, describeCase(c));
    }
    if (!c.expect.includes(res.status)) {
      // A 2xx where the contract demands a refusal was already reported by `post` when it is a wrong write.
      const reported = ok && c.post !== undefined && c.post(res).some((p) => p.kind === "wrong");
      if (!reported) {
        this.ledger.add("violation", c.category, `answered ${res.status}${res.json?.error?.code ? ` ${res.json.error.code}` : ""}, expected ${c.expect.join("/")}: ${res.text.slice(0, 160)}`, describeCase(c));
      }
    }
  }

  // ---- WebSocket frames ----------------------------------------------------------

  private async ws(c: WsFrameCase): Promise<void> {
    const slot = this.slot(c.actor, c.socket);
    await slot.lock.run(async () => {
      let s = slot.get();
      if (!s.isOpen) {
        try {
          s = await slot.reopen();
          slot.set(s);
        } catch (err) {
          this.ledger.add("crash", c.category, `could not reopen the attacker's ${c.socket} socket: ${(err as Error).message}`, describeCase(c));
          return;
        }
      }
      const from = s.frames.length;
      const odd = s.oddities.length;
      for (const f of c.frames) {
        if (typeof f === "string") s.send(f);
        else s.sendBinary(f);
        this.ledger.frames += 1;
      }
      let reply: any;
      try {
        if (c.send) {
          const want = c.send.cmid;
          const mangled = mangleLoneSurrogates(want);
          const same = (v: unknown) => v === want || v === mangled;
          // A frame refused as a whole (e.g. for a lone surrogate) may name no ref: on this socket
          // nothing else is in flight, so an error with a null ref is this frame's.
          const nullRefOk = c.send.errorCodes.includes("invalid_request");
          reply = await s.waitFor(
            (f) => (f?.type === "sent" && same(f.client_message_id)) || (f?.type === "error" && (same(f.ref) || (nullRefOk && f.ref === null))),
            WS_TIMEOUT_MS,
            "send reply",
            from,
          );
        }
        s.send(PROBE);
        this.ledger.frames += 1;
        await s.waitForCount((f) => f?.type === "pong", c.pongs + 1, WS_TIMEOUT_MS, "pong", from);
      } catch (err) {
        this.socketFailure(c, s, err as Error);
        return;
      }
      const window = s.frames.slice(from);
      let errors = window.filter((f) => f?.type === "error");
      if (reply?.type === "error") errors = errors.filter((f) => f !== reply);
      if (s.oddities.length > odd) this.ledger.add("violation", c.category, `server sent a non-JSON or binary frame: ${String(s.oddities.at(-1)).slice(0, 100)}`, describeCase(c));

      switch (c.expect) {
        case "error":
          if (errors.length !== 1) {
            this.ledger.answer(c.category, `errors×${errors.length}`);
            this.ledger.add("violation", c.category, `expected one error frame, got ${errors.length}: ${JSON.stringify(errors).slice(0, 200)}`, describeCase(c));
          } else {
            this.ledger.answer(c.category, `error:${errors[0].code}`);
            const p = errorFrameProblem(errors[0], c.codes, c.ref);
            if (p) this.ledger.add("violation", c.category, p, describeCase(c));
          }
          break;
        case "none":
          if (errors.length) this.ledger.add("violation", c.category, `unexpected error frame(s): ${JSON.stringify(errors).slice(0, 200)}`, describeCase(c));
          break;
        case "maybe":
          if (errors.length > 1) this.ledger.add("violation", c.category, `more than one error frame: ${JSON.stringify(errors).slice(0, 200)}`, describeCase(c));
          else if (errors.length === 1) {
            const p = errorFrameProblem(errors[0], c.codes, c.ref);
            if (p) this.ledger.add("violation", c.category, p, describeCase(c));
          }
          this.ledger.answer(c.category, errors.length ? `error:${errors[0].code}` : "ok");
          break;
      }
      if (c.send) {
        const { conv, sender, cmid, content } = c.send;
        if (reply.type === "sent") {
          this.ledger.answer(c.category, "sent");
          const m = reply.message;
          const prev = this.ledger.sends.get(Ledger.key(conv, sender, cmid));
          const repeat = prev?.accepted === true && prev.messageId === m?.message_id;
          this.ledger.accept(conv, sender, cmid, m, content, c.category);
          const problems: string[] = [];
          if (m?.sender_id !== sender) problems.push(`sent frame names sender ${m?.sender_id}`);
          if (m?.conversation_id !== conv) problems.push(`sent frame names conversation ${m?.conversation_id}`);
          if (reply.client_message_id !== cmid || m?.client_message_id !== cmid) problems.push(`client_message_id ${JSON.stringify(cmid)} came back as ${JSON.stringify(m?.client_message_id)}`);
          if (c.send.mustFail && !repeat) problems.push(`a send the contract refuses was stored (content of ${content.length} chars, kind ${JSON.stringify(m?.kind)})`);
          const expected = repeat ? prev!.content : content;
          if (m?.content !== expected) {
            problems.push(`content stored differently from what was sent (${String(expected).length} chars sent: ${JSON.stringify(String(expected).slice(0, 40))}, ${String(m?.content?.length)} stored: ${JSON.stringify(String(m?.content).slice(0, 40))})`);
          }
          for (const p of problems) this.ledger.add("wrong", c.category, p, describeCase(c));
        } else {
          this.ledger.answer(c.category, `error:${reply.code}`);
          this.ledger.reject(conv, sender, cmid);
          const p = errorFrameProblem(reply, c.send.errorCodes, reply.ref === null ? null : cmid);
          if (p) this.ledger.add("violation", c.category, p, describeCase(c));
        }
      }
    });
  }

  private socketFailure(c: Case, s: Socket, err: Error): void {
    if (s.closeInfo) {
      const { code, reason } = s.closeInfo;
      this.ledger.answer(c.category, `close:${code}`);
      if (code === 1006 || code === 1011 || code === 1001) this.ledger.add("crash", c.category, `socket closed with ${code} ${reason}`, describeCase(c));
      else this.ledger.add("violation", c.category, `socket closed with ${code} ${reason} after a frame (it must stay open)`, describeCase(c));
    } else {
      this.ledger.answer(c.category, "timeout");
      this.ledger.add("crash", c.category, `socket hung: ${err.message.slice(0, 300)}`, describeCase(c));
    }
  }

  // ---- handshakes -----------------------------------------------------------------

  private async handshake(c: HandshakeCase): Promise<void> {
    const qs = new URLSearchParams(c.query).toString();
    const url = `${this.world.wsBase}${c.path}${qs ? `?${qs}` : ""}`;
    this.ledger.requests += 1;
    const outcome = await new Promise<{ status: number; body: string; error?: string }>((resolve) => {
      let settled = false;
      const done = (v: { status: number; body: string; error?: string }) => {
        if (!settled) {
          settled = true;
          resolve(v);
        }
      };
      let ws: WebSocket;
      try {
        ws = new WebSocket(url, { headers: c.headers, handshakeTimeout: WS_TIMEOUT_MS });
      } catch (err) {
        return done({ status: -1, body: "", error: (err as Error).message });
      }
      ws.on("unexpected-response", (req, res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => {
          done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
          req.destroy();
        });
      });
      ws.on("open", () => {
        done({ status: 101, body: "" });
        ws.close(1000, "fuzz");
      });
      ws.on("error", (err) => done({ status: -1, body: "", error: err.message }));
    });
    this.ledger.answer(c.category, outcome.status === -1 ? "error" : String(outcome.status));
    if (outcome.status === -1) {
      this.ledger.add("crash", c.category, `handshake failed: ${outcome.error}`, describeCase(c));
      return;
    }
    if (outcome.status >= 500) {
      this.ledger.add("crash", c.category, `handshake answered ${outcome.status}: ${outcome.body.slice(0, 200)}`, describeCase(c));
      return;
    }
    if (outcome.status !== 101) {
      const p = errorBodyProblem(outcome.status, outcome.body);
      if (p) this.ledger.add("violation", c.category, `handshake: ${p}`, describeCase(c));
    }
    if (!c.expect.includes(outcome.status)) {
      const kind = outcome.status === 101 ? "wrong" : "violation";
      this.ledger.add(kind, c.category, `handshake answered ${outcome.status}, expected ${c.expect.join("/")}: ${outcome.body.slice(0, 160)}`, describeCase(c));
    }
  }

  // ---- a token that expires while its socket is open --------------------------------

  private async expiring(c: ExpiringCase): Promise<void> {
    const a = c.actor;
    const exp = Math.floor(Date.now() / 1000) + c.lifetimeSeconds;
    const token = await signToken(this.world.secret, { sub: a.s.user_id, did: a.s.device_id, exp });
    const path = c.target === "device" ? "/sync" : `/conversations/${a.ownGroup}/ws`;
    this.ledger.requests += 1;
    const s = await this.api.openSocket(path, token);
    if (s.status !== 101) {
      this.ledger.answer(c.category, String(s.status));
      if (s.status === 422) return; // the per-user socket cap: a valid answer
      this.ledger.add(s.status >= 500 || s.status === 0 ? "crash" : "violation", c.category, `socket with a live short token refused: ${s.status} ${s.refusal.slice(0, 120)}`, describeCase(c));
      return;
    }
    try {
      s.send(PROBE);
      await s.waitFor((f) => f?.type === "pong", WS_TIMEOUT_MS, "pong before expiry");
      await sleep(Math.max(0, exp * 1000 + 700 - Date.now()));
      s.send(c.target === "device" ? PROBE : '{"type":"typing","state":"start"}');
      this.ledger.frames += 2;
      const info = await s.waitClose(10_000);
      this.ledger.answer(c.category, `close:${info.code}`);
      if (info.code !== CLOSE_UNAUTHORIZED) {
        this.ledger.add(info.code === 1006 || info.code === 1011 ? "crash" : "violation", c.category, `socket of an expired token closed with ${info.code}, not 4401`, describeCase(c));
      }
    } catch (err) {
      this.ledger.answer(c.category, "still-open");
      this.ledger.add("violation", c.category, `a socket whose token expired stays open after a frame: ${(err as Error).message.slice(0, 200)}`, describeCase(c));
    } finally {
      await s.close();
    }
  }

  // ---- a frame over the runtime's limit ----------------------------------------------

  /**
   * The contract wants an error frame and an open socket; workerd closes a socket whose
   * message exceeds its limit (32 MiB) with 1009 before the Worker sees it. Both are accepted
   * (the second is a platform limit, reported in the answers as close:1009); anything else is not.
   */
  private async oversized(c: OversizedCase): Promise<void> {
    const a = c.actor;
    const s = await this.api.openSocket(c.target === "device" ? "/sync" : `/conversations/${a.ownGroup}/ws`, a.s.token);
    if (s.status !== 101) {
      this.ledger.answer(c.category, String(s.status));
      if (s.status !== 422) this.ledger.add(s.status >= 500 || s.status === 0 ? "crash" : "violation", c.category, `socket refused: ${s.status} ${s.refusal.slice(0, 120)}`, describeCase(c));
      return;
    }
    try {
      s.send("o".repeat(c.bytes));
      s.send(PROBE);
      this.ledger.frames += 2;
      const closed = s.closed.then(() => "closed" as const);
      const answered = s.waitFor((f) => f?.type === "pong", 90_000, "pong after an oversized frame").then(() => "answered" as const);
      const how = await Promise.race([closed, answered]);
      if (how === "closed") {
        const code = s.closeInfo!.code;
        this.ledger.answer(c.category, `close:${code}`);
        if (code !== 1009) this.ledger.add(code === 1006 || code === 1011 ? "crash" : "violation", c.category, `socket closed with ${code} after an oversized frame`, describeCase(c));
      } else {
        const err = s.frames.find((f) => f?.type === "error");
        this.ledger.answer(c.category, err ? `error:${err.code}` : "no-error");
        const p = errorFrameProblem(err, ["too_large", "invalid_request"], null);
        if (p) this.ledger.add("violation", c.category, p, describeCase(c));
      }
    } catch (err) {
      this.ledger.answer(c.category, "timeout");
      this.ledger.add("crash", c.category, `no answer and no close after an oversized frame: ${(err as Error).message.slice(0, 200)}`, describeCase(c));
    } finally {
      await s.close();
    }
  }

  // ---- a burst of valid messages into the conversation honest users share with attackers ----

  private async flood(c: FloodCase): Promise<void> {
    const conv = this.world.mixed;
    const jobs = this.world.flooders.flatMap((f, i) =>
      Array.from({ length: this.floodSize }, async (_, j) => {
        const id = newCmid(`flood-${c.index}-${i}-${j}`);
        const content = `flood ${c.index}/${i}/${j}`;
        this.ledger.requests += 1;
        try {
          const res = await this.api.send(f, conv, id, content);
          this.ledger.answer(c.category, String(res.status));
          if (res.status === 201 || res.status === 200) this.ledger.accept(conv, f.user_id, id, res.json, content, c.category);
          else {
            this.ledger.reject(conv, f.user_id, id);
            if (res.status >= 500) this.ledger.add("crash", c.category, `flood send answered ${res.status}: ${res.text.slice(0, 160)}`, describeCase(c));
            else if (res.status !== 429) this.ledger.add("violation", c.category, `flood send answered ${res.status}: ${res.text.slice(0, 160)}`, describeCase(c));
          }
        } catch (err) {
          this.ledger.add("crash", c.category, `flood send failed: ${(err as Error).message}`, describeCase(c));
        }
      }),
    );
    await Promise.all(jobs);
  }
}
