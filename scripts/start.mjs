#!/usr/bin/env node
// `npm start -- [--port N] [--ip ADDR] [--persist-to DIR] [other wrangler dev flags]`
// Local server: copies .dev.vars.example to .dev.vars on first run, applies the D1
// migrations to the local state, then runs `wrangler dev` on that same state.
import { spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { appendFileSync, copyFileSync, existsSync, readFileSync } from "node:fs";
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

ensureDevVars(join(root, ".dev.vars"), join(root, ".dev.vars.example"));

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
    // The local server accepts http: push endpoints on loopback, for testing (CONTRACT.md section 8).
    "--var",
    "PUSH_ALLOW_LOOPBACK_HTTP:true",
    ...passthrough,
  ],
  { cwd: root, env, stdio: "inherit" },
);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

/**
 * .dev.vars holds the local secrets: created from the example on first run, then given
 * whatever it lacks — settings added to the example since, and a VAPID key pair.
 */
function ensureDevVars(path, examplePath) {
  if (!existsSync(path)) {
    copyFileSync(examplePath, path);
    console.log("created .dev.vars from .dev.vars.example");
  }
  const keys = (text) => new Set([...text.matchAll(/^\s*([A-Z0-9_]+)\s*=/gm)].map((m) => m[1]));
  const have = keys(readFileSync(path, "utf8"));
  const lines = [];
  for (const line of readFileSync(examplePath, "utf8").split("\n")) {
    const key = line.match(/^\s*([A-Z0-9_]+)\s*=/)?.[1];
    if (key && !have.has(key)) lines.push(line);
  }
  if (!have.has("VAPID_PUBLIC_KEY") || !have.has("VAPID_PRIVATE_KEY")) {
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const pub = publicKey.export({ format: "jwk" });
    const raw = Buffer.concat([Buffer.from([4]), Buffer.from(pub.x, "base64url"), Buffer.from(pub.y, "base64url")]);
    lines.push(`VAPID_PUBLIC_KEY="${raw.toString("base64url")}"`, `VAPID_PRIVATE_KEY="${privateKey.export({ format: "jwk" }).d}"`);
    console.log("generated a local VAPID key pair in .dev.vars");
  }
  if (lines.length) appendFileSync(path, `\n${lines.join("\n")}\n`);
}
