/**
 * Issue 11, finding 8: `npm run deploy` refuses a Worker that lets every origin open
 * WebSockets (empty ALLOWED_ORIGINS), says how to fix it, and deploys once origins are set.
 * `--dry-run` keeps it local: wrangler bundles and stops before uploading.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const deploy = (...args: string[]) =>
  spawnSync(process.execPath, ["scripts/deploy.mjs", "--dry-run", "--outdir", mkdtempSync(join(tmpdir(), "deploy-check-")), ...args], {
    encoding: "utf8",
    timeout: 90_000,
  });

describe("npm run deploy", () => {
  it("refuses while ALLOWED_ORIGINS is empty, naming the fix", () => {
    const run = deploy();
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("Refusing to deploy. ALLOWED_ORIGINS is empty");
    expect(run.stderr).toContain("--allow-any-origin");
    expect(run.stdout).not.toContain("--dry-run: exiting now");
  });

  it("deploys with origins given, and with --allow-any-origin after a warning", () => {
    const withOrigins = deploy("--var", "ALLOWED_ORIGINS:https://app.example.com");
    expect(withOrigins.status, withOrigins.stderr).toBe(0);
    expect(withOrigins.stdout).toContain("--dry-run: exiting now");
    const anyway = deploy("--allow-any-origin");
    expect(anyway.status, anyway.stderr).toBe(0);
    expect(anyway.stderr).toContain("WARNING: deploying anyway");
  }, 180_000);
});
