#!/usr/bin/env node
// `npm start -- [--port N] [--ip ADDR] [--persist-to DIR] [--no-build] [other wrangler dev flags]`
// Local server: builds the SDK (client/dist) and the web app (web/dist, the Worker's static
// assets) when their sources changed, copies .dev.vars.example to .dev.vars on first run,
// applies the D1 migrations to the local state, then runs `wrangler dev` on that same state.
import { spawn, spawnSync } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values, tokens } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    ip: { type: "string", default: "127.0.0.1" },
    "persist-to": { type: "string", default: join(root, ".wrangler", "state") },
    "no-build": { type: "boolean", default: false },
  },
  strict: false,
  tokens: true,
});
const known = new Set(["port", "ip", "persist-to", "no-build"]);
const passthrough = [];
for (const t of tokens) {
  if (t.kind === "option" && !known.has(t.name)) passthrough.push(t.rawName, ...(t.value !== undefined ? [t.value] : []));
  if (t.kind === "positional") passthrough.push(t.value);
}
const persistTo = resolve(String(values["persist-to"]));

ensureDevVars(join(root, ".dev.vars"), join(root, ".dev.vars.example"));

// What the server serves must be current: `npm start` alone gives a fresh app.
if (!values["no-build"]) {
  const vite = join(root, "node_modules", "vite", "bin", "vite.js");
  const clientBuild = join(root, "client", "build.mjs");
  if (existsSync(clientBuild)) {
    buildIfStale("client", ["client/src", "client/build.mjs", "client/tsconfig.json", "protocol"], "client/dist", [clientBuild]);
  }
  buildIfStale("web", ["web", "client/src", "protocol", "package-lock.json"], "web/dist", [vite, "build", "--config", "web/vite.config.ts"]);
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
 * Runs a build (`node ...args` in the repo) unless its output is current: every output file
 * newer than every source (what `npm run build` leaves), or a (sources hash, output hash)
 * pair that an earlier build recorded in node_modules/.cache. The record serves copies of
 * the tree whose file times say nothing (the e2e snapshot links node_modules, so it shares
 * it): same sources and same output, no build; an output edited or built from other
 * sources is rebuilt. Building in place while a server runs there would hot-reload it.
 */
function buildIfStale(name, inputs, output, args) {
  const record = join(root, "node_modules", ".cache", "edge-chat", "builds.json");
  let seen = [];
  try {
    seen = JSON.parse(readFileSync(record, "utf8"));
  } catch {
    // first build here
  }
  const outDir = join(root, output);
  const sources = scanTree(inputs.map((p) => join(root, p)), [outDir]);
  const key = (out) => `${name}:${sources.hash}:${out.hash}`;
  const remember = (out) => {
    const next = [...seen.filter((k) => k !== key(out)).slice(-40), key(out)];
    mkdirSync(dirname(record), { recursive: true });
    const tmp = `${record}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(next));
    renameSync(tmp, record);
  };
  if (existsSync(outDir)) {
    const out = scanTree([outDir], []);
    if (out.files > 0 && seen.includes(key(out))) return;
    if (out.files > 0 && out.oldest >= sources.newest) return remember(out);
  }
  console.log(`building ${output} (${name} sources changed)`);
  const run = spawnSync(process.execPath, args, { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, stdio: "inherit" });
  if (run.status !== 0) {
    console.error(`the ${name} build failed`);
    process.exit(run.status ?? 1);
  }
  remember(scanTree([outDir], []));
}

/** Every file under `paths` (files or directories): one hash of relative paths and contents, the count, the oldest and newest mtime. */
function scanTree(paths, exclude) {
  const hash = createHash("sha256");
  const skip = new Set(["node_modules", ".git", ".wrangler"]);
  const out = { hash: "", files: 0, oldest: Infinity, newest: 0 };
  const walk = (path) => {
    if (exclude.includes(path) || !existsSync(path)) return;
    const stat = statSync(path);
    if (stat.isDirectory()) {
      const names = readdirSync(path).sort();
      for (const name of names) if (!skip.has(name)) walk(join(path, name));
      return;
    }
    hash.update(`${relative(root, path)}\0`).update(readFileSync(path)).update("\0");
    out.files++;
    out.oldest = Math.min(out.oldest, stat.mtimeMs);
    out.newest = Math.max(out.newest, stat.mtimeMs);
  };
  for (const p of paths) walk(p);
  out.hash = hash.digest("hex").slice(0, 32);
  return out;
}

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
  // The example's TOKEN_SECRET (and the fixed one it once had) is a placeholder: each checkout gets its own.
  const text = readFileSync(path, "utf8");
  const secret = text.match(/^\s*TOKEN_SECRET\s*=\s*"?([^"\n]*)"?\s*$/m)?.[1];
  if (secret === undefined || secret === "npm-start-replaces-this-with-a-random-value" || secret === "local-dev-secret-change-me-0123456789abcdef") {
    const fresh = `TOKEN_SECRET="${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")}"`;
    writeFileSync(path, secret === undefined ? `${text}\n${fresh}\n` : text.replace(/^\s*TOKEN_SECRET\s*=.*$/m, fresh));
    console.log("generated a random TOKEN_SECRET in .dev.vars");
  }
}
