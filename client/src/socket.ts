/**
 * A WebSocket that keeps itself open: the connection state machine of the SDK, shared by
 * the device socket and conversation sockets.
 *
 *   connecting ──open──▶ connected ──close/dead──▶ disconnected ──backoff──▶ connecting
 *        └──────────── close 4401 (bad token) / a stop code ────────────▶ failed (final)
 *
 * Every attempt asks for a fresh URL, so it carries the latest cursor and token. A
 * connection that answers no `ping` within `pongTimeoutMs` is treated as dead: a cut
 * TCP path can look open for minutes.
 */
import { Backoff, type BackoffOptions } from "./backoff";

export type ConnectionState = "connecting" | "connected" | "disconnected" | "failed";

/** What a close code means to the SDK: retry, or stop (then `failed`). */
export type CloseVerdict = "retry" | "stop";

export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_FORBIDDEN = 4403;

export interface HeartbeatOptions {
  /** How often to ping an idle connection, ms (default 25 s). */
  pingIntervalMs?: number;
  /** How long a ping may go unanswered before the connection counts as dead, ms (default 10 s). */
  pongTimeoutMs?: number;
  /** How long an opening handshake may take before it is abandoned and retried, ms (default 10 s). */
  connectTimeoutMs?: number;
}

export type WebSocketLike = typeof WebSocket;

export interface ReconnectingSocketOptions extends HeartbeatOptions {
  url: () => string | Promise<string>;
  WebSocket?: WebSocketLike;
  backoff?: BackoffOptions;
  /** Each parsed frame, in order; the next waits until the returned promise settles. */
  onFrame: (frame: { type?: unknown } & Record<string, unknown>) => void | Promise<void>;
  onState?: (state: ConnectionState) => void;
  /** Runs once the socket is open, before `connected` is announced (a replay, a resend). */
  onOpen?: (socket: ReconnectingSocket) => void | Promise<void>;
  /** Decides on every close; the default retries everything but 4401. */
  onClose?: (code: number, reason: string) => CloseVerdict;
  /**
   * A socket that never opened tells nothing of why (browsers hide the upgrade's status):
   * this finds out, e.g. by checking the token over HTTP. Default: retry.
   */
  onRefused?: () => Promise<CloseVerdict>;
}

const PING = JSON.stringify({ type: "ping" });

export class ReconnectingSocket {
  state: ConnectionState = "disconnected";
  private ws: WebSocket | null = null;
  private readonly backoff: Backoff;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setTimeout> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private frames: Promise<void> = Promise.resolve();
  private stopped = false;
  private pongWaiters: (() => void)[] = [];
  /** When the last connection attempt began: the reconnect time after a cut. */
  lastAttemptAt = 0;
  lastConnectedAt = 0;

  constructor(private readonly options: ReconnectingSocketOptions) {
    this.backoff = new Backoff(options.backoff);
  }

  /** Starts connecting, if not already; resolves on the first `connected`, rejects on `failed`. */
  start(): Promise<void> {
    this.stopped = false;
    if (this.state === "disconnected" || this.state === "failed") void this.attempt();
    return this.whenConnected();
  }

  whenConnected(): Promise<void> {
    if (this.state === "connected") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.state === "connected") return resolve();
        if (this.state === "failed" || this.stopped) return reject(new Error(`socket ${this.stopped ? "stopped" : "failed"}`));
        this.stateWaiters.push(check);
      };
      check();
    });
  }
  private stateWaiters: (() => void)[] = [];

  /** Closes for good: no more retries. */
  stop(code = 1000, reason = "closed by client"): void {
    this.stopped = true;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) ws.close(code, reason);
    this.setState("disconnected");
  }

  /** Sends a frame if open; answers whether it went out. */
  send(frame: unknown): boolean {
    if (this.state !== "connected" && this.ws?.readyState !== 1) return false;
    try {
      this.ws!.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Resolves at the next `pong`: every frame the server sent before it has been handled. */
  ping(): Promise<void> {
    const ws = this.ws;
    if (!ws) return Promise.resolve();
    return new Promise((resolve) => {
      this.pongWaiters.push(resolve);
      ws.send(PING);
    });
  }

  /**
   * Checks the connection at once: a waiting retry is made now, and an open socket must
   * answer a ping within `pongTimeoutMs` or is dropped and reconnected.
   */
  probe(): void {
    if (this.stopped) return;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.backoff.reset();
      void this.attempt();
      return;
    }
    const ws = this.ws;
    if (!ws || this.state !== "connected") return;
    const timer = setTimeout(() => {
      if (this.ws === ws) this.drop();
    }, this.options.pongTimeoutMs ?? 10_000);
    void this.ping().then(() => clearTimeout(timer));
  }

  /** Drops the current connection as if the network had cut it; the usual retry follows. */
  drop(): void {
    this.ws?.close(4000, "dropped by client");
    if (this.ws) this.onDisconnect(this.ws, 4000, "dropped by client");
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    this.retryTimer = null;
    this.setState("connecting");
    this.lastAttemptAt = Date.now();
    let url: string;
    try {
      url = await this.options.url();
    } catch {
      return this.scheduleRetry();
    }
    if (this.stopped) return;
    const Impl = this.options.WebSocket ?? globalThis.WebSocket;
    let ws: WebSocket;
    try {
      ws = new Impl(url);
    } catch {
      return this.scheduleRetry();
    }
    this.ws = ws;
    let opened = false;
    // A connection cut during the handshake may never report open or close: give up on it.
    const handshake = setTimeout(() => {
      if (this.ws !== ws || opened) return;
      this.ws = null;
      try {
        ws.close();
      } catch {
        // closing a socket that is still connecting may throw in some runtimes
      }
      this.scheduleRetry();
    }, this.options.connectTimeoutMs ?? 10_000);
    ws.onopen = () => {
      clearTimeout(handshake);
      if (this.ws !== ws) return;
      opened = true;
      this.backoff.connected();
      this.armHeartbeat();
      // Not chained on `frames`: an open handler may wait (ping) for frames to be handled.
      Promise.resolve()
        .then(() => this.options.onOpen?.(this))
        .then(
          () => {
            if (this.ws !== ws) return;
            this.lastConnectedAt = Date.now();
            this.setState("connected");
          },
          () => this.ws === ws && ws.close(4000, "open handler failed"),
        );
    };
    ws.onmessage = (event: MessageEvent) => {
      if (this.ws !== ws) return;
      this.armHeartbeat();
      let frame: { type?: unknown } & Record<string, unknown>;
      try {
        frame = JSON.parse(String(event.data));
      } catch {
        return;
      }
      if (frame.type === "pong") {
        for (const waiter of this.pongWaiters.splice(0)) this.frames = this.frames.then(waiter);
        return;
      }
      this.frames = this.frames.then(() => this.options.onFrame(frame)).catch(() => ws.close(4000, "frame handler failed"));
    };
    /** The socket never opened: its error or close says nothing of why, so ask. */
    const refused = () => {
      clearTimeout(handshake);
      if (this.ws !== ws) return;
      this.ws = null;
      this.clearTimers();
      if (!this.options.onRefused) return this.scheduleRetry();
      this.setState("disconnected");
      void this.options.onRefused().then(
        (verdict) => (verdict === "stop" ? this.fail() : this.scheduleRetry()),
        () => this.scheduleRetry(),
      );
    };
    ws.onclose = (event: CloseEvent) => {
      clearTimeout(handshake);
      if (!opened) return refused();
      this.onDisconnect(ws, event.code, event.reason);
    };
    // Node's WebSocket (undici) reports a refused upgrade with an error and no close event.
    // After open, an error may also come without a close: the connection is gone either way.
    ws.onerror = () => {
      if (!opened) return refused();
      this.onDisconnect(ws, 1006, "error");
    };
  }

  private onDisconnect(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.clearTimers();
    this.backoff.disconnected();
    for (const waiter of this.pongWaiters.splice(0)) waiter();
    if (this.stopped) return this.setState("disconnected");
    const verdict = this.options.onClose?.(code, reason) ?? (code === CLOSE_UNAUTHORIZED ? "stop" : "retry");
    if (verdict === "stop") return this.fail();
    this.setState("disconnected");
    this.scheduleRetry();
  }

  private fail(): void {
    if (this.stopped && this.state === "disconnected") return;
    this.stopped = true;
    this.setState("failed");
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    this.setState("disconnected");
    this.retryTimer = setTimeout(() => void this.attempt(), this.backoff.next());
  }

  /** Any frame proves the connection alive; silence for a ping interval earns a ping. */
  private armHeartbeat(): void {
    const interval = this.options.pingIntervalMs ?? 25_000;
    const timeout = this.options.pongTimeoutMs ?? 10_000;
    if (this.pingTimer) clearTimeout(this.pingTimer);
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.pongTimer = null;
    const ws = this.ws;
    this.pingTimer = setTimeout(() => {
      if (this.ws !== ws || !ws) return;
      try {
        ws.send(PING);
      } catch {
        return this.onDisconnect(ws, 1006, "send failed");
      }
      this.pongTimer = setTimeout(() => {
        if (this.ws !== ws) return;
        ws.close(4000, "no pong");
        this.onDisconnect(ws, 4000, "no pong");
      }, timeout);
    }, interval);
  }

  private clearTimers(): void {
    for (const t of [this.retryTimer, this.pingTimer, this.pongTimer]) if (t) clearTimeout(t);
    this.retryTimer = this.pingTimer = this.pongTimer = null;
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.options.onState?.(state);
    for (const waiter of this.stateWaiters.splice(0)) waiter();
  }
}
