/**
 * GET /v1/calls/ice-servers against a stand-in of Cloudflare Realtime's TURN API on
 * loopback: the server mints with its key, hands clients only the credentials, and caches
 * them per user.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api } from "./client";
import { TestServer } from "./server";

interface Minted {
  path: string;
  auth: string | undefined;
  body: { ttl?: number };
}

let standIn: Server;
let server: TestServer;
let api: Api;
const minted: Minted[] = [];
let failNext = false;

const readBody = (req: IncomingMessage) =>
  new Promise<string>((ok) => {
    let text = "";
    req.on("data", (chunk) => (text += chunk));
    req.on("end", () => ok(text));
  });

beforeAll(async () => {
  standIn = createServer(async (req, res) => {
    const body = JSON.parse((await readBody(req)) || "{}");
    if (failNext) {
      failNext = false;
      res.writeHead(500).end("down");
      return;
    }
    minted.push({ path: req.url ?? "", auth: req.headers.authorization, body });
    res.writeHead(201, { "content-type": "application/json" }).end(
      JSON.stringify({
        iceServers: [
          { urls: ["stun:stun.cloudflare.com:3478"] },
          { urls: ["turn:turn.cloudflare.com:3478?transport=udp"], username: `user-${minted.length}`, credential: `cred-${minted.length}` },
        ],
      }),
    );
  });
  await new Promise<void>((ok) => standIn.listen(0, "127.0.0.1", ok));
  const port = (standIn.address() as { port: number }).port;
  server = await TestServer.start({
    args: ["--var", "TURN_KEY_ID:test-key", "--var", "TURN_KEY_API_TOKEN:very-secret-token", "--var", `TURN_API_BASE:http://127.0.0.1:${port}`, "--var", "TURN_CREDENTIAL_TTL_SECONDS:900"],
  });
  api = new Api(server.baseUrl);
});
afterAll(async () => {
  await server?.dispose();
  standIn?.close();
});

describe("ICE servers with Cloudflare Realtime TURN", () => {
  it("mints credentials with the key, never shows the key, and caches them per user", async () => {
    const [a, b] = await Promise.all([api.register("ia"), api.register("ib")]);
    expect((await api.get("/calls/ice-servers")).status).toBe(401);

    const first = await api.get("/calls/ice-servers", a.token);
    expect(first.status).toBe(200);
    expect(first.json.ttl).toBe(900);
    expect(first.json.ice_servers[1]).toEqual({ urls: ["turn:turn.cloudflare.com:3478?transport=udp"], username: "user-1", credential: "cred-1" });
    expect(first.text).not.toContain("very-secret-token");
    expect(first.text).not.toContain("test-key");
    expect(minted).toEqual([{ path: "/v1/turn/keys/test-key/credentials/generate-ice-servers", auth: "Bearer very-secret-token", body: { ttl: 900 } }]);

    const again = await api.get("/calls/ice-servers", a.token);
    expect(again.json.ice_servers).toEqual(first.json.ice_servers);
    expect(again.json.ttl).toBeLessThanOrEqual(900);
    expect(minted).toHaveLength(1);

    const other = await api.get("/calls/ice-servers", b.token);
    expect(other.json.ice_servers[1].username).toBe("user-2");
    expect(minted).toHaveLength(2);
  });

  it("when the TURN API fails, answers the STUN list briefly instead of failing the call", async () => {
    const c = await api.register("ic");
    failNext = true;
    const res = await api.get("/calls/ice-servers", c.token);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ice_servers: [{ urls: "stun:stun.cloudflare.com:3478" }], ttl: 60 });
  });
});
