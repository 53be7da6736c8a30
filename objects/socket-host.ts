/**
 * What both objects do around their hibernatable sockets, written once: the checks before
 * an upgrade is accepted, typed access to each socket's attachment, and the guard every
 * client frame passes (token and device, size and shape, then the handler). A handler
 * that throws (an RPC to another object failed, say) is answered with an `internal` error
 * frame naming the frame's `ref`, so no frame is ever left unanswered.
 */
import { CLOSE_UNAUTHORIZED, errorFrame, type ErrorBody, type ServerFrame, type Wire } from "../protocol";
import type { Parsed } from "./frames";
import { closeSocket, json, sendFrame, upgradeCaller, type SocketIdentity } from "./sockets";

export interface SocketHostOptions {
  /** Whether this device was revoked (its sockets and upgrades are refused with 401 / 4401). */
  isRevoked(deviceId: string): boolean;
}

export interface Admission {
  /** The object's own refusal, judged first (before revocation and the socket limit), or null. */
  refuse?(caller: SocketIdentity): Response | null;
  /** Sockets the caller already holds here, counted against `max`. */
  open(caller: SocketIdentity): number;
  max: number;
  /** The 422's message when `open` reached `max`. */
  limitMessage: string;
}

export interface FrameGuard<State, Frame, Sender> {
  /**
   * After the token and device checks: what the handler needs of the sender (read once per
   * frame, e.g. their member row), or null to close the socket with `refusal`.
   */
  sender(state: State): Sender | null;
  refusal?: { code: number; reason: string };
  /** The frame's shape; a failure is answered as an error frame and the socket stays open. */
  parse(data: string | ArrayBuffer): Parsed<Frame>;
  handle(state: State, frame: Frame, sender: Sender): Promise<void>;
}

const INTERNAL: ErrorBody = { code: "internal", message: "internal error" };

export class SocketHost<State extends SocketIdentity, Out extends ServerFrame> {
  constructor(
    private readonly ctx: DurableObjectState,
    private readonly options: SocketHostOptions,
  ) {}

  /** The caller of a forwarded upgrade, or the answer that refuses it (400, the object's own, 401, 422). */
  admit(request: Request, admission: Admission): SocketIdentity | Response {
    const caller = upgradeCaller(request);
    if (caller instanceof Response) return caller;
    const refused = admission.refuse?.(caller);
    if (refused) return refused;
    if (this.options.isRevoked(caller.deviceId)) return json({ error: { code: "unauthorized", message: "device revoked" } }, 401);
    if (admission.open(caller) >= admission.max) return json({ error: { code: "limit_exceeded", message: admission.limitMessage } }, 422);
    return caller;
  }

  /** Accepts the server end of a pair, hibernatable, with its tags and first attachment. */
  accept(server: WebSocket, tags: string[], state: State): void {
    this.ctx.acceptWebSocket(server, tags);
    this.setAttachment(server, state);
  }

  attachment(ws: WebSocket): State {
    return ws.deserializeAttachment() as State;
  }

  /** Null for a socket that never got one (closed or failed before it was accepted). */
  attachmentIfAny(ws: WebSocket): State | null {
    return ws.deserializeAttachment() as State | null;
  }

  setAttachment(ws: WebSocket, state: State): void {
    ws.serializeAttachment(state);
  }

  /** A frame of this object's socket kind, or text serialized from one. */
  send(ws: WebSocket, frame: Out | Wire<Out>): void {
    sendFrame(ws, frame);
  }

  /** One client frame, from webSocketMessage: checked, parsed, handled, and answered if the handler throws. */
  async onMessage<Frame extends object, Sender>(ws: WebSocket, data: string | ArrayBuffer, guard: FrameGuard<State, Frame, Sender>): Promise<void> {
    const state = this.attachment(ws);
    if (state.exp * 1000 <= Date.now() || this.options.isRevoked(state.deviceId)) {
      return closeSocket(ws, CLOSE_UNAUTHORIZED, "token expired or device revoked");
    }
    const sender = guard.sender(state);
    if (sender === null) return closeSocket(ws, guard.refusal?.code ?? CLOSE_UNAUTHORIZED, guard.refusal?.reason ?? "refused");
    const parsed = guard.parse(data);
    if ("error" in parsed) return sendFrame(ws, errorFrame(parsed.error, parsed.ref));
    try {
      await guard.handle(state, parsed.frame, sender);
    } catch (err) {
      console.error(`a ${frameType(parsed.frame)} frame failed`, err);
      sendFrame(ws, errorFrame(INTERNAL, refOf(parsed.frame)));
    }
  }
}

/** Section 1: an error frame's `ref` is the frame's client_message_id, or null. */
function refOf(frame: object): string | null {
  const id = (frame as { client_message_id?: unknown }).client_message_id;
  return typeof id === "string" ? id : null;
}

const frameType = (frame: object) => String((frame as { type?: unknown }).type);
