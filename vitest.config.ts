import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        // Unit and integration tests inside workerd, against the real objects and bindings.
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                TOKEN_SECRET: "test-secret-0123456789abcdef0123456789abcdef",
                // A fixed test pair: without it the workers tests depended on a .dev.vars that
                // only a run of the local server (the e2e tests) happened to write first.
                VAPID_PUBLIC_KEY: "BGC8wYf0g7FpTnfg2Ee9hgbBQsKWB_Z6Awmltizi4vPeDFtYYU0XYhW7gNIz3XwwsHI4SzyEbYFTBGNAKnvOIwM",
                VAPID_PRIVATE_KEY: "aXghLKjr6hPWFuE7qPiwWbWKeJBtyB4WYpf3oHHG4Fo",
                ALLOWED_ORIGINS: "https://app.example",
                MAX_SOCKETS_PER_USER: "4",
                MAX_CONVERSATION_SOCKETS_PER_USER: "6",
                CALL_RING_TIMEOUT_SECONDS: "2",
                // Media (test/workers/media.test.ts): small limits, R2's smallest parts.
                MAX_MEDIA_SINGLE_BYTES: "1048576",
                MAX_MEDIA_BYTES: "12582912",
                MEDIA_PART_BYTES: "5242880",
                TEST_MIGRATIONS: await readD1Migrations("./schema/migrations"),
              },
            },
          })),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts", "worker/**/*.test.ts"],
          setupFiles: ["./test/workers/setup.ts"],
        },
      },
      {
        // End-to-end: the real local server (`npm start`), spoken to over HTTP and WebSocket.
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // The web app in real Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
        // against the real local server: two browser contexts, two people.
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
