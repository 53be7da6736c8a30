/**
 * The population of a fuzz run: honest users (who talk throughout and must not notice a
 * thing), attackers (who send the hostile cases), flooders (attackers that burst valid
 * messages into a conversation honest users are in) and the conversations between them.
 */
import { createECDH, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { SignJWT } from "jose";
import type { Api, Session, Socket } from "../../test/e2e/client.ts";

export interface Honest {
  index: number;
  /** Device 1: device socket and conversation sockets open all run long. */
  s: Session;
  /** Device 2: a phone in a pocket: a Web Push subscription, never a socket. */
  phone: Session;
  sync: Socket;
  convWs: Map<string, Socket>;
  /** The conversations this user talks in: its direct, the honest group, the mixed group. */
  convs: string[];
}

export interface Attacker {
  index: number;
  s: Session;
  /** A group the attacker created (admin) with the other attackers in it. */
  ownGroup: string;
  /** A direct conversation with the next attacker. */
  direct: string;
  sync: Socket;
  ownWs: Socket;
  mixedWs: Socket;
}

export interface World {
  api: Api;
  baseUrl: string;
  wsBase: string;
  secret: string;
  honest: Honest[];
  attackers: Attacker[];
  flooders: Session[];
  /** Conversations of honest users only: attackers are never members. */
  honestConvs: string[];
  honestGroup: string;
  /** The group created by honest user 0 with every honest user, every attacker and every flooder in it. */
  mixed: string;
  /** Members of each conversation at setup, for the final membership check. */
  initialMembers: Map<string, Set<string>>;
  /** A token of an attacker device that was revoked during setup. */
  revokedToken: string;
  revokedDeviceId: string;
  /** Loopback endpoint of the fake push service. */
  pushEndpoint: string;
  pushKeys: { p256dh: string; auth: string };
  /** Client message ids honest users used, for attackers to reuse. */
  honestCmids: string[];
  pushServer: Server;
  pushesReceived: number;
}

export interface WorldOptions {
  honestPairs: number;
  /** How many honest users' phones have a Web Push subscription (the first ones). */
  subscribedPhones: number;
  attackers: number;
  flooders: number;
}

/** A fake Web Push service on loopback: accepts everything with 201. */
async function startPushService(world: { pushesReceived: number }): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      world.pushesReceived += 1;
      res.statusCode = 201;
      res.end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return { server, url: `http://127.0.0.1:${port}/push/` };
}

export function subscriptionKeys(): { p256dh: string; auth: string } {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  return { p256dh: ecdh.getPublicKey().toString("base64url"), auth: randomBytes(16).toString("base64url") };
}

/** An HS256 token signed with the local server's secret: for expired and mismatched claims. */
export async function signToken(secret: string, claims: { sub?: unknown; did?: unknown; exp?: unknown }, header: Record<string, unknown> = {}): Promise<string> {
  const payload: Record<string, unknown> = {};
  if (claims.did !== undefined) payload.did = claims.did;
  if (claims.sub !== undefined) payload.sub = claims.sub;
  if (claims.exp !== undefined) payload.exp = claims.exp;
  payload.iat = Math.floor(Date.now() / 1000) - 10;
  return new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ: "JWT", ...header }).sign(new TextEncoder().encode(secret));
}

export async function buildWorld(api: Api, secret: string, opts: WorldOptions, log: (s: string) => void): Promise<World> {
  const counters = { pushesReceived: 0 };
  const push = await startPushService(counters);
  const pushKeys = subscriptionKeys();

  // ---- users ---------------------------------------------------------------
  const honestSessions = await Promise.all(Array.from({ length: opts.honestPairs * 2 }, (_, i) => api.register(`fzh${i}`)));
  const attackerSessions = await Promise.all(Array.from({ length: opts.attackers }, (_, i) => api.register(`fza${i}`)));
  const flooders = await Promise.all(Array.from({ length: opts.flooders }, (_, i) => api.register(`fzf${i}`)));
  const phones = await Promise.all(honestSessions.map((s) => api.login(s, "phone")));
  // The first `subscribedPhones` honest users' phones have a Web Push subscription (and never a socket).
  await Promise.all(
    phones.slice(0, opts.subscribedPhones).map(async (phone) => {
      const res = await api.post("/push/subscriptions", phone.token, { endpoint: `${push.url}${phone.device_id}`, keys: subscriptionKeys() });
      if (res.status !== 201) throw new Error(`push subscription for an honest phone: ${res.status} ${res.text}`);
    }),
  );

  // Device sockets first, so that every event of every conversation below is seen live.
  const honestSync = await Promise.all(honestSessions.map((s) => api.sync(s)));
  const attackerSync = await Promise.all(attackerSessions.map((s) => api.sync(s)));

  // ---- conversations -------------------------------------------------------
  const initialMembers = new Map<string, Set<string>>();
  const directs = await Promise.all(
    Array.from({ length: opts.honestPairs }, async (_, p) => {
      const a = honestSessions[2 * p]!;
      const b = honestSessions[2 * p + 1]!;
      const id = await api.direct(a, b);
      initialMembers.set(id, new Set([a.user_id, b.user_id]));
      return id;
    }),
  );
  const [honestGroup, mixed] = await Promise.all([
    api.group(honestSessions[0]!, honestSessions.slice(1), "honest group"),
    api.group(honestSessions[0]!, [...honestSessions.slice(1), ...attackerSessions, ...flooders], "mixed group"),
  ]);
  initialMembers.set(honestGroup, new Set(honestSessions.map((s) => s.user_id)));
  initialMembers.set(mixed, new Set([...honestSessions, ...attackerSessions, ...flooders].map((s) => s.user_id)));

  const attackers: Attacker[] = await Promise.all(
    attackerSessions.map(async (s, i) => {
      const others = attackerSessions.filter((o) => o !== s);
      const ownGroup = await api.group(s, others, `attacker ${i}`);
      initialMembers.set(ownGroup, new Set(attackerSessions.map((o) => o.user_id)));
      const peer = attackerSessions[(i + 1) % attackerSessions.length]!;
      const direct = peer === s ? ownGroup : await api.direct(s, peer);
      const [ownWs, mixedWs] = await Promise.all([api.convSocket(s, ownGroup), api.convSocket(s, mixed)]);
      return { index: i, s, ownGroup, direct, sync: attackerSync[i]!, ownWs, mixedWs };
    }),
  );

  const honest: Honest[] = await Promise.all(
    honestSessions.map(async (s, i) => {
      const convs = [directs[Math.floor(i / 2)]!, honestGroup, mixed];
      const sockets = await Promise.all(convs.map((c) => api.convSocket(s, c)));
      const convWs = new Map<string, Socket>(convs.map((c, k) => [c, sockets[k]!]));
      return { index: i, s, phone: phones[i]!, sync: honestSync[i]!, convWs, convs };
    }),
  );

  // ---- a revoked device: its open sockets must close with 4401, its token must stop working --
  const victim = attackerSessions[0]!;
  const doomed = await api.login(victim, "doomed");
  const doomedSync = await api.sync(doomed);
  const doomedConv = await api.convSocket(doomed, attackers[0]!.ownGroup);
  await Promise.all([doomedSync.roundTrip(), doomedConv.roundTrip()]);
  const del = await api.del(`/devices/${doomed.device_id}`, victim.token);
  if (del.status !== 204) throw new Error(`revoking a device: ${del.status} ${del.text}`);
  const closes = await Promise.all([doomedSync.waitClose(10_000), doomedConv.waitClose(10_000)]);
  for (const c of closes) if (c.code !== 4401) throw new Error(`a revoked device's socket closed with ${c.code}, not 4401`);

  log(
    `world: ${honest.length} honest users (${Math.min(opts.subscribedPhones, honest.length)} with an offline push-subscribed phone), ${attackers.length} attackers, ${flooders.length} flooders; ` +
      `${directs.length + 1} honest conversations, 1 mixed group, ${attackers.length} attacker groups`,
  );

  const world: World = {
    api,
    baseUrl: api.baseUrl,
    wsBase: api.wsBase,
    secret,
    honest,
    attackers,
    flooders,
    honestConvs: [...directs, honestGroup],
    honestGroup,
    mixed,
    initialMembers,
    revokedToken: doomed.token,
    revokedDeviceId: doomed.device_id,
    pushEndpoint: push.url,
    pushKeys,
    honestCmids: [],
    pushServer: push.server,
    get pushesReceived() {
      return counters.pushesReceived;
    },
  };
  return world;
}
