/**
 * The history-tier figures (CONTRACT.md section 14), inside workerd like the workers tests:
 *   npx vitest run --config bench/tiers.config.ts
 * Fills one conversation with 100,000 messages with tiering (HOT_MESSAGES 5,000, segments
 * of 1,000) and one without, then prints each object's SQLite size and history page
 * latencies per tier. It asserts nothing timed. TIERS_MESSAGES=N runs a smaller fill.
 */
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest(async () => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          TOKEN_SECRET: "test-secret-0123456789abcdef0123456789abcdef",
          TIERS_MESSAGES: process.env.TIERS_MESSAGES ?? "100000",
          TEST_MIGRATIONS: await readD1Migrations("./schema/migrations"),
        },
      },
    })),
  ],
  test: {
    include: ["test/workers/tiers-figures.bench.ts"],
    setupFiles: ["./test/workers/setup.ts"],
    testTimeout: 1_800_000,
  },
});
