/**
 * Which push endpoints we will send to: `https:` only (RFC 8030 §8), except `http:` to a
 * loopback address (127.0.0.0/8, `localhost`, `[::1]`, `[::ffff:127.x.y.z]`) when the caller
 * allows it, so the local server can be tested against a fake push service.
 */

export interface EndpointPolicy {
  /** Accept `http:` endpoints whose host is a loopback address. Default false. */
  allowLoopbackHttp?: boolean;
}

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
  if (u.protocol === "https:") return true;
  if (u.protocol === "http:") return policy.allowLoopbackHttp === true && isLoopbackHost(u.hostname);
  return false;
}
