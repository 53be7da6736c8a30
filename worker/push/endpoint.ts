/**
 * Which push endpoints we will send to: `https:` only (RFC 8030 §8), to a host name — never
 * an IP literal or `localhost` (the server would otherwise POST wherever a client says, its
 * own network included) — and, when the caller gives a `hosts` list, only to those push
 * services. The one exception is `http:` to a loopback address (127.0.0.0/8, `localhost`,
 * `[::1]`, `[::ffff:127.x.y.z]`) when the caller allows it, so the local server can be
 * tested against a fake push service.
 */

export interface EndpointPolicy {
  /** Accept `http:` endpoints whose host is a loopback address. Default false. */
  allowLoopbackHttp?: boolean;
  /**
   * The push services' host names an `https:` endpoint may have: `fcm.googleapis.com`
   * exactly, or `*.push.apple.com` for any name below `push.apple.com`. Absent: any name.
   */
  hosts?: readonly string[];
}

/** The push services of the browsers in use (PUSH_HOSTS' default). */
export const DEFAULT_PUSH_HOSTS: readonly string[] = [
  "fcm.googleapis.com",
  "updates.push.services.mozilla.com",
  "*.push.services.mozilla.com",
  "*.push.apple.com",
  "*.notify.windows.com",
];

/** An IPv4 or IPv6 literal as the URL parser serialises hosts (IPv4 always dotted-decimal, IPv6 bracketed). */
const isIpLiteral = (h: string) => h.startsWith("[") || /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);

const matchesHost = (host: string, pattern: string) => {
  const p = pattern.trim().toLowerCase().replace(/\.$/, "");
  return p.startsWith("*.") ? host.endsWith(p.slice(1)) && host.length > p.length - 1 : host === p;
};

/** True for `localhost`, any 127.0.0.0/8 address, `[::1]` and IPv4-mapped 127/8, as the URL parser serialises them. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === "localhost" || h === "localhost.") return true;
  // The WHATWG URL parser canonicalises IPv4 (e.g. "127.1" → "127.0.0.1", "0x7f.1" → "127.0.0.1").
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  // ...and IPv6 ("[0:0::1]" → "[::1]", "[::ffff:127.0.0.1]" → "[::ffff:7f00:1]").
  if (h === "[::1]") return true;
  if (/^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(h)) return true;
  return false;
}

/** Whether `url` is an acceptable push endpoint under `policy`. Never throws. */
export function isAllowedEndpoint(url: string | URL, policy: EndpointPolicy = {}): boolean {
  let u: URL;
  try {
    u = typeof url === "string" ? new URL(url) : url;
  } catch {
    return false;
  }
  // Credentials in an endpoint are never legitimate, and would leak into logs.
  if (u.username !== "" || u.password !== "") return false;
  if (u.hostname === "") return false;
  if (u.protocol === "https:") {
    const host = u.hostname.toLowerCase().replace(/\.$/, "");
    if (isIpLiteral(host) || host === "localhost" || host.endsWith(".localhost")) return false;
    return policy.hosts === undefined || policy.hosts.some((pattern) => matchesHost(host, pattern));
  }
  if (u.protocol === "http:") return policy.allowLoopbackHttp === true && isLoopbackHost(u.hostname);
  return false;
}
