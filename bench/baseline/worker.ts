/**
 * The benchmark's baseline: the cheapest server that speaks the same socket-level
 * protocol as edge-chat, run in its own workerd next to the real one. It is NOT part of
 * the deployed Worker; bench/lib/server.ts bundles it separately.
 *
 * - `Room` (one per conversation) hosts conversation sockets: `send` → `sent` to the
 *   sender, `message` to every socket on the room (the sender's too), then the message is
 *   relayed to each member's `Box` — the same shape as Conversation → Inbox fan-out,
 *   coalesced into batches with at most 16 RPCs in flight, like objects/fanout.ts.
 * - `Box` (one per user) hosts device sockets and forwards `{"type":"message","cursor",…}`.
 *
 * Nothing is stored on the message path: no SQLite, no output gate, no auth, no
 * rate limit, no idempotency. The member list is written once at setup and cached.
 * Both objects use the hibernation API (acceptWebSocket + attachments) and the same
 * `ping` auto-response, so idle sockets cost what hibernating sockets cost.
 */
import { DurableObject } from "cloudflare:workers";
import type { Message } from "../../protocol/index.ts";

interface Env {
  ROOM: DurableObjectNamespace<Room>;
  BOX: DurableObjectNamespace<Box>;
}

interface Identity {
  userId: string;
  deviceId: string;
}

/** The real server's message shape; the baseline echoes any `kind` without checking it. */
type BaseMessage = Omit<Message, "kind" | "media_id"> & { kind: string };

const PARALLEL_BOXES = 16;

/** The units the real server's meter counts (worker/lib/meter.ts), for GET /__bench/meter. */
const meter = { workerInvocations: 0, doRpc: 0, doRpcByMethod: {} as Record<string, number>, wsIn: 0, alarms: 0, sqlStatements: 0, sqlRowsRead: 0, sqlRowsWritten: 0, d1Queries: 0, d1RowsRead: 0, d1RowsWritten: 0 };
const rpc = (method: string) => {
  meter.doRpc += 1;
  meter.doRpcByMethod[method] = (meter.doRpcByMethod[method] ?? 0) + 1;
};
const BATCH = 200;

function identity(url: URL): Identity | null {
  const userId = url.searchParams.get("user");
  const deviceId = url.searchParams.get("device");
  return userId && deviceId ? { userId, deviceId } : null;
}

function randomId(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  return `${prefix}_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export class Room extends DurableObject<Env> {
  private members: string[] | null = null;
  private seq = 0;
  private queue: BaseMessage[] = [];
  private draining: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
  }

  /**
   * Setup only (not measured): who the room relays to. Like creating a real group, which
   * sends each member's Inbox a `conversation` event, it wakes each member's Box once, so
   * both servers have created the same objects before anything is measured.
   */
  async setMembers(members: string[]): Promise<void> {
    this.members = members;
    await this.ctx.storage.put("members", members);
    for (let i = 0; i < members.length; i += PARALLEL_BOXES) {
      await Promise.all(members.slice(i, i + PARALLEL_BOXES).map((m) => rpc("deliver") ?? this.env.BOX.get(this.env.BOX.idFromName(m)).deliver([])));
    }
  }

  override async fetch(request: Request): Promise<Response> {
    const who = identity(new URL(request.url));
    if (!who || request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("bad request", { status: 400 });
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], [who.userId]);
    pair[1].serializeAttachment(who);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    meter.wsIn += 1;
    if (typeof data !== "string") return;
    let frame: { type?: string; client_message_id?: string; kind?: string; content?: string };
    try {
      frame = JSON.parse(data);
    } catch {
      ws.send('{"type":"error","code":"invalid_request","message":"frame is not valid JSON","ref":null}');
      return;
    }
    if (frame.type === "ping") return ws.send('{"type":"pong"}');
    if (frame.type !== "send" || typeof frame.client_message_id !== "string" || typeof frame.content !== "string") {
      ws.send(JSON.stringify({ type: "error", code: "invalid_request", message: "unsupported frame", ref: frame.client_message_id ?? null }));
      return;
    }
    const who = ws.deserializeAttachment() as Identity;
    const message: BaseMessage = {
      message_id: randomId("m"),
      conversation_id: this.ctx.id.toString(),
      seq: ++this.seq,
      sender_id: who.userId,
      sender_device_id: who.deviceId,
      client_message_id: frame.client_message_id,
      kind: frame.kind ?? "text",
      content: frame.content,
      created_at: Date.now(),
    };
    ws.send(JSON.stringify({ type: "sent", client_message_id: message.client_message_id, message }));
    const text = JSON.stringify({ type: "message", message });
    for (const peer of this.ctx.getWebSockets()) {
      try {
        peer.send(text);
      } catch {
        // closing
      }
    }
    this.queue.push(message);
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
    });
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "closing");
    } catch {
      // already closed
    }
  }

  /** Relays whatever is queued to every member's Box, batch by batch, 16 RPCs in flight. */
  private async drain(): Promise<void> {
    this.members ??= (await this.ctx.storage.get<string[]>("members")) ?? [];
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, BATCH);
      const members = this.members;
      let next = 0;
      const lanes = Array.from({ length: Math.min(PARALLEL_BOXES, members.length) }, async () => {
        while (next < members.length) {
          const userId = members[next++]!;
          try {
            rpc("deliver");
            await this.env.BOX.get(this.env.BOX.idFromName(userId)).deliver(batch);
          } catch (err) {
            console.warn("baseline relay failed", err);
          }
        }
      });
      await Promise.all(lanes);
    }
  }
}

export class Box extends DurableObject<Env> {
  private cursor = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
  }

  async deliver(batch: BaseMessage[]): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    for (const message of batch) {
      const text = JSON.stringify({ type: "message", cursor: String(++this.cursor), message });
      for (const ws of sockets) {
        try {
          ws.send(text);
        } catch {
          // closing
        }
      }
    }
  }

  override async fetch(request: Request): Promise<Response> {
    const who = identity(new URL(request.url));
    if (!who || request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("bad request", { status: 400 });
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], [who.deviceId]);
    pair[1].serializeAttachment(who);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override async webSocketMessage(ws: WebSocket): Promise<void> {
    meter.wsIn += 1;
    ws.send('{"type":"error","code":"invalid_request","message":"the device socket takes only ping frames","ref":null}');
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "closing");
    } catch {
      // already closed
    }
  }
}

/**
 * Routes like the real Worker (one Worker → object hop per socket), minus authentication:
 *   GET  /room/:id/ws?user=&device=   conversation socket
 *   GET  /sync?user=&device=          device socket
 *   POST /room/:id/members            {"members":[…]} (setup)
 */
export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    meter.workerInvocations += 1;
    if (url.pathname === "/__bench/meter") return Response.json(meter);
    if (url.pathname === "/health") return Response.json({ ok: true, baseline: true });
    const room = url.pathname.match(/^\/room\/([^/]+)\/(ws|members)$/);
    if (room) {
      const stub = env.ROOM.get(env.ROOM.idFromName(room[1]!));
      rpc(room[2] === "ws" ? "fetch" : "setMembers");
      if (room[2] === "ws") return stub.fetch(request);
      const body = (await request.json()) as { members: string[] };
      await stub.setMembers(body.members);
      return new Response(null, { status: 204 });
    }
    if (url.pathname === "/sync") {
      const who = identity(url);
      if (!who) return new Response("bad request", { status: 400 });
      rpc("fetch");
      return env.BOX.get(env.BOX.idFromName(who.userId)).fetch(request);
    }
    return new Response("not found", { status: 404 });
  },
} satisfies ExportedHandler<Env>;
