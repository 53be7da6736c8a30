#!/usr/bin/env node
// Builds the SDK: client/dist/index.js (browsers and Node) and client/dist/node.js (adds
// FileStorage), ESM with shared chunks so both entries share one copy of every class,
// plus .d.ts files. protocol/ is imported for types only, so nothing of it (zod) is bundled.
// The MLS layer bundles ts-mls (through mls/adapter.ts) and its crypto (@noble/*, @hpke/*);
// nothing else from node_modules, and nothing of the server (protocol/, worker/, objects/).
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const result = await build({
  entryPoints: { index: join(here, "src/index.ts"), node: join(here, "src/node.ts") },
  outdir: dist,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  // ts-mls imports these lazily for cipher suites the server never accepts (only suite 1):
  // not installed, never loaded, kept out of the bundle.
  external: ["node:*", "@hpke/ml-kem", "@hpke/dhkem-x448", "@hpke/chacha20poly1305", "@hpke/hybridkem-x-wing", "@noble/post-quantum", "@noble/post-quantum/*"],
  sourcemap: true,
  metafile: true,
  logLevel: "warning",
});
for (const [file, out] of Object.entries(result.metafile.outputs)) {
  for (const input of Object.keys(out.inputs)) {
    const allowed = /node_modules\/(ts-mls|@noble\/[^/]+|@hpke\/[^/]+)\//.test(input);
    const server = /(^|\/)(protocol|worker|objects|schema)\//.test(input) || /node_modules\/(zod|hono|drizzle-orm)\//.test(input);
    if (server || (input.includes("node_modules") && !allowed)) throw new Error(`${file} bundles ${input}: the SDK must not carry server code`);
  }
}

const tsc = spawnSync(process.execPath, [join(here, "../node_modules/typescript/bin/tsc"), "-p", join(here, "tsconfig.json")], { stdio: "inherit" });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
writeFileSync(join(dist, "index.d.ts"), 'export * from "./types/client/src/index";\n');
writeFileSync(join(dist, "node.d.ts"), 'export * from "./types/client/src/node";\n');
const { gzipSync } = await import("node:zlib");
const { readFileSync } = await import("node:fs");
let raw = 0;
let gz = 0;
for (const file of Object.keys(result.metafile.outputs).filter((f) => f.endsWith(".js"))) {
  const bytes = readFileSync(file);
  raw += bytes.length;
  gz += gzipSync(bytes).length;
}
console.log(`client/dist built: ${(raw / 1024).toFixed(1)} KiB of JavaScript, ${(gz / 1024).toFixed(1)} KiB gzipped`);
