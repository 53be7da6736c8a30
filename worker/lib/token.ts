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

/** Values that were ever in .dev.vars.example: known to everyone, so never a secret. */
export const EXAMPLE_TOKEN_SECRETS: readonly string[] = [
  "npm-start-replaces-this-with-a-random-value",
  "local-dev-secret-change-me-0123456789abcdef",
];
export const MIN_TOKEN_SECRET_BYTES = 32;

/** Why the configured TOKEN_SECRET must not be used, or null when it is acceptable. */
export function tokenSecretProblem(secret: unknown): string | null {
  if (typeof secret !== "string" || secret === "") return "TOKEN_SECRET is not set";
  if (EXAMPLE_TOKEN_SECRETS.includes(secret)) return "TOKEN_SECRET is the value from .dev.vars.example, which everyone knows";
  if (new TextEncoder().encode(secret).byteLength < MIN_TOKEN_SECRET_BYTES) {
    return `TOKEN_SECRET is shorter than ${MIN_TOKEN_SECRET_BYTES} bytes`;
  }
  return null;
}
