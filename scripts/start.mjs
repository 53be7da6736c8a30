#!/usr/bin/env node
// `npm start -- [--port N] [--ip ADDR] [--persist-to DIR] [other wrangler dev flags]`
// Local server: copies .dev.vars.example to .dev.vars on first run, applies the D1
// migrations to the local state, then runs `wrangler dev` on that same state.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values, tokens } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    ip: { type: "string", default: "127.0.0.1" },
    "persist-to": { type: "string", default: join(root, ".wrangler", "state") },
  },
  strict: false,
  tokens: true,
});
const known = new Set(["port", "ip", "persist-to"]);
const passthrough = [];
for (const t of tokens) {
  if (t.kind === "option" && !known.has(t.name)) passthrough.push(t.rawName, ...(t.value !== undefined ? [t.value] : []));
  if (t.kind === "positional") passthrough.push(t.value);
}
const persistTo = resolve(String(values["persist-to"]));

if (!existsSync(join(root, ".dev.vars"))) {
  copyFileSync(join(root, ".dev.vars.example"), join(root, ".dev.vars"));
  console.log("created .dev.vars from .dev.vars.example");
}

const wrangler = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: process.env.CI ?? "true" };
const migrate = spawnSync(process.execPath, [wrangler, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo], {
  cwd: root,
  env,
  stdio: "inherit",
});
if (migrate.status !== 0) process.exit(migrate.status ?? 1);

const dev = spawn(
  process.execPath,
  [
    wrangler,
    "dev",
    "--port",
    String(values.port),
    "--ip",
    String(values.ip),
    "--persist-to",
    persistTo,
    "--show-interactive-dev-session=false",
    ...passthrough,
  ],
  { cwd: root, env, stdio: "inherit" },
);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
