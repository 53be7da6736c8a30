/**
 * An open conversation: its conversation socket (CONTRACT.md section 6), for what only
 * matters while it is on screen — typing, presence and receipts as they happen.
 * Messages keep arriving through the device stream, the one ordered source.
 */
import { Emitter } from "./emitter";
import { CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, ReconnectingSocket, type ConnectionState, type ReconnectingSocketOptions } from "./socket";
import type { PresenceEvent, Receipt, TypingEvent } from "./types";

export interface OpenConversationEvents extends Record<string, unknown> {
  typing: TypingEvent;
  presence: PresenceEvent;
  receipt: Receipt;
  state: ConnectionState;
  /** The socket closed with 4403: no longer a member. */
  removed: { conversation_id: string };
  /** A call signalling frame (section 11). */
  call: import("./calls").CallFrame;
  /** An error frame from the server (e.g. `rate_limited` typing). */
  error: { code: string; message: string; ref: string | null };
}

/** A `start` is renewed this often while typing goes on: the server ends one after 6 s. */
const TYPING_RENEW_MS = 3_000;

export interface OpenConversationOptions extends Pick<ReconnectingSocketOptions, "WebSocket" | "backoff" | "pingIntervalMs" | "pongTimeoutMs" | "connectTimeoutMs"> {
  url: () => string | Promise<string>;
  /** Called for every event, so the client can re-emit and keep receipts. */
  forward: <K extends keyof OpenConversationEvents>(type: K, payload: OpenConversationEvents[K]) => void;
  onClosed: () => void;
  /** Why the upgrade was refused: `removed` when no longer a member, `stop` on a bad token. */
  onRefused: () => Promise<"retry" | "stop" | "removed">;
}

export class OpenConversation extends Emitter<OpenConversationEvents> {
  private readonly socket: ReconnectingSocket;
  private typingSince = 0;
  private typingStop: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly conversationId: string,
    private readonly options: OpenConversationOptions,
  ) {
    super();
    this.socket = new ReconnectingSocket({
      url: options.url,
      WebSocket: options.WebSocket,
      backoff: options.backoff,
      pingIntervalMs: options.pingIntervalMs,
      pongTimeoutMs: options.pongTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs,
      onFrame: (frame) => this.onFrame(frame),
      // A socket that has sent a frame sees its close at once (without one, workerd's close
      // can take ~10 s to end the TCP connection): ping on open, which also proves it live.
      onOpen: (socket) => socket.ping(),
      onState: (state) => this.fire("state", state),
      onClose: (code) => {
        if (code === CLOSE_FORBIDDEN) {
          this.fire("removed", { conversation_id: this.conversationId });
          return "stop";
        }
        return code === CLOSE_UNAUTHORIZED ? "stop" : "retry";
      },
      onRefused: async () => {
        const why = await options.onRefused();
        if (why === "removed") this.fire("removed", { conversation_id: this.conversationId });
        return why === "retry" ? "retry" : "stop";
      },
    });
    void this.socket.start().catch(() => undefined);
  }

  get state(): ConnectionState {
    return this.socket.state;
  }

  /** Resolves once the socket is open. */
  ready(): Promise<void> {
    return this.socket.whenConnected();
  }

  /**
   * Say whether the user is typing. Call it on every keystroke with `true`: starts are
   * renewed before the server's 6 s expiry and a `stop` follows 5 s without keystrokes.
   */
  typing(active: boolean): void {
    if (this.typingStop) clearTimeout(this.typingStop);
    this.typingStop = null;
    if (!active) {
      if (this.typingSince) this.socket.send({ type: "typing", state: "stop" });
      this.typingSince = 0;
      return;
    }
    const now = Date.now();
    // Only a start that went out counts: one typed before the socket opened is sent on the next keystroke.
    if (now - this.typingSince >= TYPING_RENEW_MS && this.socket.send({ type: "typing", state: "start" })) this.typingSince = now;
    this.typingStop = setTimeout(() => this.typing(false), 5_000);
  }

  /** Checks the connection now (see ReconnectingSocket.probe). */
  probe(): void {
    this.socket.probe();
  }

  /** Sends a raw frame on the conversation socket (call signalling, say). */
  send(frame: { type: string } & Record<string, unknown>): boolean {
    return this.socket.send(frame);
  }

  /** The device stream said we were removed: end as a 4403 would, without waiting for it. */
  removed(): void {
    this.fire("removed", { conversation_id: this.conversationId });
    this.socket.stop(1000, "removed");
    this.socket.state = "failed";
    this.emit("state", "failed");
    this.clear();
    this.options.onClosed();
  }

  close(): void {
    if (this.typingStop) clearTimeout(this.typingStop);
    if (this.typingSince) this.socket.send({ type: "typing", state: "stop" });
    this.socket.stop();
    this.clear();
    this.options.onClosed();
  }

  private onFrame(frame: Record<string, unknown>): void {
    const conversation_id = this.conversationId;
    switch (frame.type) {
      case "typing":
        return this.fire("typing", { conversation_id, user_id: String(frame.user_id), device_id: frame.device_id as string | undefined, state: frame.state === "start" ? "start" : "stop" });
      case "presence":
        return this.fire("presence", {
          conversation_id,
          user_id: String(frame.user_id),
          status: frame.status as PresenceEvent["status"],
          last_seen: (frame.last_seen as number | null) ?? null,
        });
      case "receipt":
        return this.fire("receipt", { conversation_id, user_id: String(frame.user_id), kind: frame.kind as Receipt["kind"], up_to_seq: Number(frame.up_to_seq) });
      case "call":
        return this.fire("call", { ...(frame as unknown as import("./calls").CallFrame), conversation_id });
      case "error":
        return this.fire("error", { code: String(frame.code), message: String(frame.message), ref: (frame.ref as string | null) ?? null });
    }
  }

  private fire<K extends keyof OpenConversationEvents>(type: K, payload: OpenConversationEvents[K]): void {
    this.emit(type, payload);
    this.options.forward(type, payload);
  }
}
