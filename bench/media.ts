/**
 * Media upload figures (CONTRACT.md section 9) against the real local server (`npm start`,
 * through test/e2e/server.ts): a one-request upload of 32 MiB and an upload of 100 MiB in
 * parts, with the resident memory (VmRSS) of every workerd process of the server sampled
 * every 20 ms meanwhile, and the throughput. The server streams bodies to R2, so its memory
 * must not grow by anything near the file's size.
 *
 *   node bench/media.ts [--parallel N]     (Node 22: node_modules/node/bin/node)
 *
 * Local R2 is miniflare's, on disk, inside the same workerd process: its memory is counted too.
 */
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { TestServer } from "../test/e2e/server.ts";

const { values } = parseArgs({ options: { parallel: { type: "string", default: "3" }, repeat: { type: "string", default: "2" } } });
const PARALLEL = Math.max(1, Number(values.parallel));
/** Each path runs this often: a steady peak across rounds shows that nothing accumulates. */
const REPEAT = Math.max(1, Number(values.repeat));
const MiB = 1024 * 1024;

/** The pids of the workerd processes in a process group. */
function workerdPids(group: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (comm.startsWith("workerd") && Number(fields[2]) === group) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

const rssKiB = (pid: number): number => {
  try {
    return Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
  } catch {
    return 0;
  }
};

/** Samples the summed RSS of the pids until stopped: before (first sample), peak, after. */
function sampler(pids: number[]) {
  const total = () => pids.reduce((sum, pid) => sum + rssKiB(pid), 0);
  const before = total();
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, total())), 20);
  return {
    stop: () => {
      clearInterval(timer);
      const after = total();
      return { beforeMiB: before / 1024, peakMiB: Math.max(peak, after) / 1024, afterMiB: after / 1024 };
    },
  };
}

async function api(base: string, token: string | null, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}/v1${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as any;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function put(url: string, token: string, method: string, bytes: Uint8Array, contentType: string) {
  const res = await fetch(url, { method, headers: { authorization: `Bearer ${token}`, "content-type": contentType }, body: bytes });
  const json = (await res.json()) as any;
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const server = await TestServer.start();
try {
  const base = server.baseUrl;
  const group = (server as unknown as { child: { pid: number } }).child.pid;
  const pids = workerdPids(group);
  if (pids.length === 0) throw new Error("no workerd process found in the server's process group");
  const me = await api(base, null, "POST", "/auth/register", { handle: `bench_${Date.now().toString(36)}`, password: "correct horse" });
  const { conversation_id: id } = await api(base, me.token, "POST", "/conversations", { type: "group", name: "media bench", members: [] });
  // Warm the objects and the R2 simulator so first-use costs are not counted as the upload's.
  await put(`${base}/v1/conversations/${id}/media`, me.token, "POST", randomBytes(1024), "application/octet-stream");

  const results: Record<string, unknown>[] = [];

  for (let round = 1; round <= REPEAT; round++) {
    const bytes = randomBytes(32 * MiB);
    const sha = createHash("sha256").update(bytes).digest("hex");
    const mem = sampler(pids);
    const t0 = performance.now();
    const media = await put(`${base}/v1/conversations/${id}/media`, me.token, "POST", bytes, "video/mp4");
    const seconds = (performance.now() - t0) / 1000;
    if (media.sha256 !== sha) throw new Error("single upload: sha256 differs");
    results.push({ path: "one request, 32 MiB", round, ...mem.stop(), seconds, MBps: bytes.length / 1e6 / seconds });
    const down = sampler(pids);
    const t1 = performance.now();
    const res = await fetch(`${base}/v1/conversations/${id}/media/${media.media_id}`, { headers: { authorization: `Bearer ${me.token}` } });
    const got = new Uint8Array(await res.arrayBuffer());
    const downSeconds = (performance.now() - t1) / 1000;
    if (createHash("sha256").update(got).digest("hex") !== sha) throw new Error("download: sha256 differs");
    results.push({ path: "download, 32 MiB", round, ...down.stop(), seconds: downSeconds, MBps: got.length / 1e6 / downSeconds });
  }

  for (let round = 1; round <= REPEAT; round++) {
    const bytes = randomBytes(100 * MiB);
    const sha = createHash("sha256").update(bytes).digest("hex");
    const mem = sampler(pids);
    const t0 = performance.now();
    const up = await api(base, me.token, "POST", `/conversations/${id}/media/uploads`, { size: bytes.length, content_type: "video/mp4" });
    let next = 1;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next <= up.part_count) {
          const n = next++;
          const part = bytes.subarray((n - 1) * up.part_size, n * up.part_size);
          await put(`${base}/v1/conversations/${id}/media/uploads/${up.upload_id}/parts/${n}`, me.token, "PUT", part, "application/octet-stream");
        }
      }),
    );
    const t1 = performance.now();
    const media = await api(base, me.token, "POST", `/conversations/${id}/media/uploads/${up.upload_id}/complete`);
    const t2 = performance.now();
    if (media.sha256 !== sha) throw new Error("multipart upload: sha256 differs");
    results.push({
      path: `in parts, 100 MiB (${up.part_count} × ${up.part_size / MiB} MiB, ${PARALLEL} at a time)`,
      round,
      ...mem.stop(),
      seconds: (t2 - t0) / 1000,
      MBps: bytes.length / 1e6 / ((t2 - t0) / 1000),
      partsSeconds: (t1 - t0) / 1000,
      completeSeconds: (t2 - t1) / 1000,
    });
  }

  const fmt = (n: unknown) => (typeof n === "number" ? n.toFixed(n > 100 ? 0 : 2) : String(n));
  console.log(`workerd processes: ${pids.map((p) => `${p} (${(rssKiB(p) / 1024).toFixed(0)} MiB now)`).join(", ")}; RSS summed, MiB`);
  for (const r of results) console.log(Object.entries(r).map(([k, v]) => `${k}: ${fmt(v)}`).join("  |  "));
  console.log(JSON.stringify(results));
} finally {
  await server.dispose();
}
