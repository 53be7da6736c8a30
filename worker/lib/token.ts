/** Bearer tokens: HS256 JWTs bound to one device (`sub` the user, `did` the device). */
import { SignJWT, jwtVerify } from "jose";

export interface TokenClaims {
  userId: string;
  deviceId: string;
  /** Seconds since the epoch. */
  exp: number;
}

const key = (secret: string) => new TextEncoder().encode(secret);

export async function issueToken(secret: string, userId: string, deviceId: string, ttlSeconds: number): Promise<string> {
  return new SignJWT({ did: deviceId })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(key(secret));
}

/** The claims of a valid, unexpired token, or null. Revocation is checked by the caller. */
export async function readToken(secret: string, token: string): Promise<TokenClaims | null> {
  try {
    const { payload } = await jwtVerify(token, key(secret), { algorithms: ["HS256"] });
    if (typeof payload.sub !== "string" || typeof payload.did !== "string" || typeof payload.exp !== "number") return null;
    return { userId: payload.sub, deviceId: payload.did, exp: payload.exp };
  } catch {
    return null;
  }
}
