// `npm run deploy [-- <wrangler deploy flags>]`: `wrangler deploy`, refused while ALLOWED_ORIGINS is
// empty. Empty lets pages of any origin open WebSockets with a user's token (browsers apply no CORS
// to WebSockets: cross-site WebSocket hijacking); that is right for `npm start` and wrong anywhere
// deployed. `--allow-any-origin` deploys anyway, with the warning. A plain `wrangler deploy` still
// works; the deployed Worker then logs the same warning on its first request (worker/app.ts).
import { spawnSync } from "node:child_process";
import { unstable_readConfig } from "wrangler";

const args = process.argv.slice(2);
const allowAnyOrigin = args.includes("--allow-any-origin");
const passOn = args.filter((a) => a !== "--allow-any-origin");

/** The value of `--name value` or `--name=value`, or undefined. */
function flag(names) {
  for (let i = 0; i < passOn.length; i++) {
    for (const name of names) {
      if (passOn[i] === name) return passOn[i + 1];
      if (passOn[i].startsWith(`${name}=`)) return passOn[i].slice(name.length + 1);
    }
  }
  return undefined;
}

/** `--var NAME:VALUE …` as wrangler reads it (values up to the next flag). */
function varsFromArgs() {
  const vars = {};
  for (let i = 0; i < passOn.length; i++) {
    if (passOn[i] !== "--var") continue;
    for (let j = i + 1; j < passOn.length && !passOn[j].startsWith("-"); j++) {
      const at = passOn[j].indexOf(":");
      if (at > 0) vars[passOn[j].slice(0, at)] = passOn[j].slice(at + 1);
    }
  }
  return vars;
}

const env = flag(["--env", "-e"]) ?? process.env.CLOUDFLARE_ENV;
const config = unstable_readConfig({ config: flag(["--config", "-c"]) ?? "wrangler.toml", env });
const origins = String(varsFromArgs().ALLOWED_ORIGINS ?? config.vars?.ALLOWED_ORIGINS ?? "").trim();

if (!origins) {
  const where = env ? `[env.${env}.vars]` : "[vars]";
  const message =
    `ALLOWED_ORIGINS is empty${env ? ` for environment "${env}"` : ""}: pages of ANY origin could open WebSockets ` +
    `to this Worker with a signed-in user's token (cross-site WebSocket hijacking).\n` +
    `Set ALLOWED_ORIGINS in wrangler.toml ${where} to your app's origins (comma-separated), or pass ` +
    `--var ALLOWED_ORIGINS:https://app.example.com, or deploy anyway with --allow-any-origin.`;
  if (!allowAnyOrigin) {
    console.error(`\nRefusing to deploy. ${message}\n`);
    process.exit(1);
  }
  console.warn(`\nWARNING: deploying anyway (--allow-any-origin). ${message}\n`);
}

const run = spawnSync("npx", ["wrangler", "deploy", ...passOn], { stdio: "inherit" });
process.exit(run.status ?? 1);
