/** Web Push settings, read by the Worker only. Loopback http: endpoints are for local testing and only set in .dev.vars. */
import { positiveInt, readVar, type Vars } from "../../shared/config";
import { DEFAULT_PUSH_HOSTS } from "./endpoint";

export function pushConfig(env: Vars) {
  const hosts = readVar(env, "PUSH_HOSTS");
  return {
    allowLoopbackHttp: readVar(env, "PUSH_ALLOW_LOOPBACK_HTTP") === "true",
    /** PUSH_HOSTS: comma-separated push service hosts (`*.` for any name below); empty or unset: the browsers' services. */
    hosts: hosts !== undefined && hosts.trim() !== "" ? hosts.split(",").map((h) => h.trim()).filter(Boolean) : DEFAULT_PUSH_HOSTS,
    retryBaseSeconds: positiveInt(readVar(env, "PUSH_RETRY_BASE_SECONDS"), 2),
  };
}
