/**
 * A TCP proxy in front of the server that can cut every connection through it, as a
 * flaky mobile network does: both directions are destroyed at once, mid-request or
 * mid-frame. `cutEvery` does it on a timer; `down()` refuses new connections too.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export class CuttingProxy {
  private readonly sockets = new Set<Socket>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private refusing = false;
  cuts = 0;
  connections = 0;
  port = 0;

  private constructor(
    private readonly server: Server,
    private readonly targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<CuttingProxy> {
    const server = createServer();
    const proxy = new CuttingProxy(server, targetPort);
    server.on("connection", (client) => proxy.accept(client));
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    const addr = server.address();
    proxy.port = typeof addr === "object" && addr ? addr.port : 0;
    return proxy;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private accept(client: Socket): void {
    if (this.refusing) return void client.destroy();
    this.connections++;
    const upstream = connect(this.targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Destroys every open connection now. */
  cut(): void {
    this.cuts++;
    for (const s of [...this.sockets]) s.destroy();
  }

  /** Cuts at random intervals between `minMs` and `maxMs` until `stop()`. */
  cutEvery(minMs: number, maxMs: number): void {
    const next = () => {
      this.timer = setTimeout(() => {
        this.cut();
        next();
      }, minMs + Math.random() * (maxMs - minMs));
    };
    next();
  }

  stopCutting(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  down(): void {
    this.refusing = true;
    this.cut();
  }

  up(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.stopCutting();
    this.cut();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }
}
