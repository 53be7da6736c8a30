/** The HTTP half of the SDK: every call goes through `request`, which turns answers into values or ChatErrors. */
import { ChatError } from "./errors";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface HttpOptions {
  baseUrl: string;
  fetch?: FetchLike;
  /** The bearer token, read on every request so that a replaced token is used at once. */
  token?: () => string | null;
  /** Each request's deadline, ms. */
  timeoutMs?: number;
}

export class Http {
  readonly baseUrl: string;
  private readonly fetchImpl: FetchLike;

  constructor(private readonly options: HttpOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** The ws:// or wss:// URL of a socket path, with its query. */
  socketUrl(path: string, query: Record<string, string | undefined>): string {
    const url = new URL(this.baseUrl + path);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    return url.toString();
  }

  async request<T>(method: string, path: string, body?: unknown, query?: Record<string, string | number | undefined>): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {};
    const token = this.options.token?.();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const signal = AbortSignal.timeout(this.options.timeoutMs ?? 30_000);
    let res: Response;
    try {
      res = await this.fetchImpl(url.toString(), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      throw new ChatError("network", `${method} ${path}: ${(err as Error).message ?? String(err)}`);
    }
    if (res.status === 204) return undefined as T;
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      // The connection broke inside the answer: as good as no answer.
      throw new ChatError("network", `${method} ${path}: answer cut short (${(err as Error).message})`);
    }
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      // a proxy's HTML error page, say: reported below by status
    }
    if (res.ok) {
      if (json === undefined) throw new ChatError("network", `${method} ${path}: ${res.status} without a readable body`, 0);
      return json as T;
    }
    const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    const retryAfter = Number(res.headers.get("retry-after") ?? NaN);
    throw new ChatError(
      error?.code ?? (res.status >= 500 ? "internal" : "invalid_request"),
      error?.message ?? `${method} ${path} answered ${res.status}`,
      res.status,
      Number.isFinite(retryAfter) ? retryAfter : undefined,
      json,
    );
  }
}
