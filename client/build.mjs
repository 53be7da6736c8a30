#!/usr/bin/env node
// Builds the SDK: client/dist/index.js (browsers and Node) and client/dist/node.js (adds
// FileStorage), ESM with shared chunks so both entries share one copy of every class,
// plus .d.ts files. protocol/ is imported for types only, so nothing of it (zod) is bundled.
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
  external: ["node:*"],
  sourcemap: true,
  metafile: true,
  logLevel: "warning",
});
for (const [file, out] of Object.entries(result.metafile.outputs)) {
  for (const input of Object.keys(out.inputs)) {
    if (input.includes("node_modules") || input.includes("protocol/")) throw new Error(`${file} bundles ${input}: the SDK must not carry server code`);
  }
}

const tsc = spawnSync(process.execPath, [join(here, "../node_modules/typescript/bin/tsc"), "-p", join(here, "tsconfig.json")], { stdio: "inherit" });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
writeFileSync(join(dist, "index.d.ts"), 'export * from "./types/client/src/index";\n');
writeFileSync(join(dist, "node.d.ts"), 'export * from "./types/client/src/node";\n');
console.log("client/dist built");
