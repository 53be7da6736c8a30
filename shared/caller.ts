/**
 * Who is calling, as the Worker authenticated them and the objects receive them: RPC
 * arguments carry a Caller; a forwarded WebSocket upgrade carries one in headers.
 */
export interface Caller {
  userId: string;
  deviceId: string;
}

/** A caller with the expiry of the token that authenticated them (seconds since the epoch). */
export interface TokenCaller extends Caller {
  exp: number;
}

/** Headers the Worker sets on a forwarded WebSocket upgrade; objects are unreachable from outside. */
export const CALLER_HEADERS = { user: "x-chat-user", device: "x-chat-device", exp: "x-chat-token-exp" } as const;

/** The caller the Worker put in a forwarded request's headers, or null when they are missing. */
export function callerFromHeaders(headers: Headers): TokenCaller | null {
  const userId = headers.get(CALLER_HEADERS.user);
  const deviceId = headers.get(CALLER_HEADERS.device);
  const exp = Number(headers.get(CALLER_HEADERS.exp));
  return userId && deviceId && Number.isFinite(exp) ? { userId, deviceId, exp } : null;
}
