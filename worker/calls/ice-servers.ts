/**
 * ICE servers for WebRTC calls (CONTRACT.md section 11): short-lived TURN credentials from
 * Cloudflare Realtime when a TURN key is configured, else the static `ICE_SERVERS` list.
 *
 * The TURN key's API token is a long-term secret that can mint unlimited credentials, so
 * it never leaves the Worker; clients get credentials that expire after `ttl` seconds
 * (https://developers.cloudflare.com/realtime/turn/generate-credentials/). Credentials are
 * cached per user for half their lifetime, so a client never receives a set about to
 * expire, and a user reconnecting calls does not mint a new set each time.
 */
import { z } from "zod";
import { readVar, type Vars } from "../../shared/config";

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface IceServers {
  ice_servers: IceServer[];
  /** Seconds the credentials stay valid from now. */
  ttl: number;
}

export interface IceConfig {
  turnKeyId?: string;
  turnApiToken?: string;
  /** Lifetime of minted credentials, seconds. */
  ttlSeconds: number;
  /** The Realtime API's origin; a stand-in on loopback in tests. */
  apiBase: string;
  staticServers: IceServer[];
}

const IceServerSchema = z.object({
  urls: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  username: z.string().optional(),
  credential: z.string().optional(),
});
const RealtimeAnswer = z.object({ iceServers: z.array(IceServerSchema).min(1) });

export const DEFAULT_ICE_SERVERS: IceServer[] = [{ urls: "stun:stun.cloudflare.com:3478" }];
/** Static servers carry no credentials to expire: a day is only how long clients may keep the list. */
const STATIC_TTL_SECONDS = 86_400;

export class IceConfigError extends Error {}

export function iceConfig(env: Vars): IceConfig {
  const s = (k: keyof Vars) => readVar(env, k) || undefined;
  let staticServers = DEFAULT_ICE_SERVERS;
  const raw = s("ICE_SERVERS");
  if (raw) {
    const parsed = z.array(IceServerSchema).min(1).safeParse(safeJson(raw));
    if (!parsed.success) throw new IceConfigError("ICE_SERVERS must be a JSON array of {urls, username?, credential?}");
    staticServers = parsed.data;
  }
  const ttl = Number(s("TURN_CREDENTIAL_TTL_SECONDS") ?? 3600);
  return {
    turnKeyId: s("TURN_KEY_ID"),
    turnApiToken: s("TURN_KEY_API_TOKEN"),
    ttlSeconds: Number.isInteger(ttl) && ttl >= 60 && ttl <= 172_800 ? ttl : 3600,
    apiBase: (s("TURN_API_BASE") ?? "https://rtc.live.cloudflare.com").replace(/\/+$/, ""),
    staticServers,
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

interface Cached {
  servers: IceServer[];
  expiresAt: number;
}

/** Per isolate; bounded so that a flood of users cannot grow it without end. */
const cache = new Map<string, Cached>();
const CACHE_MAX = 10_000;

export async function iceServersFor(userId: string, config: IceConfig, fetchImpl: typeof fetch = fetch, now = Date.now()): Promise<IceServers> {
  if (!config.turnKeyId || !config.turnApiToken) return { ice_servers: config.staticServers, ttl: STATIC_TTL_SECONDS };
  const hit = cache.get(userId);
  // Handed out only in the first half of their life: the client always has at least ttl/2 left.
  if (hit && hit.expiresAt - now > (config.ttlSeconds * 1000) / 2) {
    return { ice_servers: hit.servers, ttl: Math.floor((hit.expiresAt - now) / 1000) };
  }
  const servers = await mint(config, fetchImpl);
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.delete(userId);
  cache.set(userId, { servers, expiresAt: now + config.ttlSeconds * 1000 });
  return { ice_servers: servers, ttl: config.ttlSeconds };
}

async function mint(config: IceConfig, fetchImpl: typeof fetch): Promise<IceServer[]> {
  const url = `${config.apiBase}/v1/turn/keys/${encodeURIComponent(config.turnKeyId!)}/credentials/generate-ice-servers`;
  const res = await fetchImpl(url, {
    method: "POST",
    headers: { authorization: `Bearer ${config.turnApiToken}`, "content-type": "application/json" },
    body: JSON.stringify({ ttl: config.ttlSeconds }),
  });
  if (!res.ok) throw new TurnUnavailable(`TURN credentials: the Realtime API answered ${res.status}`);
  const parsed = RealtimeAnswer.safeParse(await res.json().catch(() => undefined));
  if (!parsed.success) throw new TurnUnavailable("TURN credentials: the Realtime API's answer has no iceServers");
  return parsed.data.iceServers;
}

export class TurnUnavailable extends Error {}

/** For tests: forget cached credentials. */
export function clearIceCache(): void {
  cache.clear();
}
