/**
 * Bearer-token authentication. The token must verify, be unexpired, and name a device
 * that is still live in D1, so a revoked device is refused on its very next request.
 */
import { createMiddleware } from "hono/factory";
import { directory, isLiveDevice } from "../../../objects/directory";
import { ApiError } from "../../errors";
import { TICKET_PATTERN, ticketStub } from "../../lib/tickets";
import { readToken, type TokenClaims } from "../../lib/token";
import type { AppEnv } from "../../types";

export interface AuthOptions {
  /** Also take `?token=`, or a single-use `?ticket=`: browsers cannot set headers on a WebSocket. */
  allowQueryToken?: boolean;
}

export const requireAuth = (options: AuthOptions = {}) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const header = c.req.header("authorization");
    const bearer = header?.match(/^Bearer\s+(\S+)$/i)?.[1];
    const token = bearer ?? (options.allowQueryToken ? c.req.query("token") : undefined);
    const ticket = bearer === undefined && options.allowQueryToken ? c.req.query("ticket") : undefined;
    let claims: TokenClaims | null;
    if (!token && ticket !== undefined) {
      // Redeemed (and so used up) here, whatever happens to the request next.
      claims = TICKET_PATTERN.test(ticket) ? await ticketStub(c.env, ticket).redeem() : null;
      if (!claims || claims.exp * 1000 <= Date.now()) throw new ApiError("unauthorized", "unknown, used or expired ticket");
    } else {
      if (!token) throw new ApiError("unauthorized", "missing bearer token");
      claims = await readToken(c.env.TOKEN_SECRET, token);
      if (!claims) throw new ApiError("unauthorized", "invalid or expired token");
    }
    if (!(await isLiveDevice(directory(c.env.DB), claims.userId, claims.deviceId))) {
      throw new ApiError("unauthorized", "device revoked");
    }
    c.set("auth", claims);
    await next();
  });

/** For routes under /conversations/*, which that app's middleware may already have authenticated: not twice. */
export const authOnce = createMiddleware<AppEnv>(async (c, next) => {
  if (c.get("auth")) return next();
  return requireAuth()(c, next);
});
