import type { TokenCaller } from "../shared/caller";

/** An authenticated request's identity, set by the auth middleware; `exp` is the token's expiry. */
export type Auth = TokenCaller;

export type AppEnv = { Bindings: Env; Variables: { auth: Auth } };
