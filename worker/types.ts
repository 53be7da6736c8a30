import type { Caller } from "../objects/schema";

/** An authenticated request's identity, set by the auth middleware. */
export interface Auth extends Caller {
  /** Token expiry, seconds since the epoch. */
  exp: number;
}

export type AppEnv = { Bindings: Env; Variables: { auth: Auth } };
