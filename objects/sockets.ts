/**
 * The objects' hibernatable sockets, below any one object: the caller of a forwarded
 * upgrade, sending frames, and closing sockets whose token expired.
 */
import type { ServerFrame, Wire } from "../protocol";
import { callerFromHeaders, type TokenCaller } from "../shared/caller";

/**
 * What every hibernatable socket carries in its attachment, so it survives eviction. At
 * `exp` the object's alarm closes the socket with 4401, and nothing is sent to it past it
 * (nor is a frame from it taken).
 */
export type SocketIdentity = TokenCaller;

/**
 * The caller of a WebSocket upgrade the Worker forwarded, or the 400 answer when the
 * request is not one.
 */
export function upgradeCaller(request: Request): SocketIdentity | Response {
  const caller = callerFromHeaders(request.headers);
  if (!caller || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return json({ error: { code: "invalid_request", message: "expected a WebSocket upgrade" } }, 400);
  }
  return caller;
}

/** Completes a closing handshake the client started, echoing its code where one may be sent. */
export function answerClose(ws: WebSocket, code: number): void {
  closeSocket(ws, code === 1005 || code === 1006 ? 1000 : code, "closing");
}

export const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/**
 * Frames are JSON text, serialized here or already (one text for many sockets); a socket
 * that went away mid-send is not an error worth surfacing.
 */
export function sendFrame(ws: WebSocket, frame: ServerFrame | Wire<ServerFrame>): void {
  try {
    ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  } catch {
    // closed or closing
  }
}

/**
 * The sockets among `sockets` whose token is still valid; the others are closed with 4401
 * on the way, so nothing more reaches a socket past its token's `exp`.
 */
export function liveSockets(sockets: WebSocket[], now = Date.now()): WebSocket[] {
  return sockets.filter((ws) => {
    const exp = expiryOf(ws);
    if (exp === undefined || exp * 1000 > now) return true;
    closeSocket(ws, CLOSE_TOKEN_EXPIRED, "token expired");
    return false;
  });
}

/**
 * A socket's token expiry never changes, so it is read from its attachment once per socket
 * object (a socket woken from hibernation is a new object, read again): every broadcast asks.
 */
const expiries = new WeakMap<WebSocket, number | undefined>();

function expiryOf(ws: WebSocket): number | undefined {
  if (expiries.has(ws)) return expiries.get(ws);
  const exp = (ws.deserializeAttachment() as SocketIdentity | null)?.exp;
  if (exp !== undefined) expiries.set(ws, exp);
  return exp;
}

/** When the first of these sockets' tokens expires (ms), or null. */
export function firstExpiry(sockets: WebSocket[]): number | null {
  let first: number | null = null;
  for (const ws of sockets) {
    const exp = expiryOf(ws);
    if (exp !== undefined && (first === null || exp * 1000 < first)) first = exp * 1000;
  }
  return first;
}

/** Same as protocol's CLOSE_UNAUTHORIZED. */
const CLOSE_TOKEN_EXPIRED = 4401;

export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}
