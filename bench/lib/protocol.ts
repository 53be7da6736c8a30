/** What the orchestrator and the client processes say to each other over IPC. */

export interface SocketSpec {
  /** Unique across the run; also names the sender in message content. */
  key: string;
  url: string;
  /** A conversation socket or a device socket (/v1/sync). */
  kind: "conv" | "sync";
  user: string;
}

export interface LoadPlan {
  stage: string;
  /** Keys of sockets in this process that send, round-robin. */
  senders: string[];
  /** Messages per second from this process. */
  rate: number;
  count: number;
  /** Epoch ms (util.now()) of the first scheduled send. */
  startAt: number;
  contentBytes: number;
  drainMs: number;
  abortAfterMs: number;
}

export interface StageData {
  ack: Float64Array;
  conv: Float64Array;
  sync: Float64Array;
  errors: Record<string, number>;
  sent: number;
  unacked: number;
  firstSend: number;
  lastRecv: number;
  lagMax: number;
  lagMean: number;
}

export type ClientRequest =
  | { cmd: "open"; sockets: SocketSpec[]; width: number; timeoutMs: number }
  | { cmd: "close"; keys?: string[] }
  | { cmd: "load"; plan: LoadPlan }
  | { cmd: "counts"; stage: string }
  | { cmd: "collect"; stage: string }
  | { cmd: "stat" }
  | { cmd: "exit" };

export type ClientReply = { ok: boolean; error?: string; [k: string]: unknown };
