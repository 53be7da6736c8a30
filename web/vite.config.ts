/**
 * The browser app: Preact, bundled by Vite into web/dist, which the Worker serves as its
 * static assets (wrangler.toml `[assets]`). `npm run build:web` (and `npm start`) run this.
 * `npx vite --config web/vite.config.ts` serves it with hot reload, proxying /v1 (HTTP and
 * WebSockets) to a `npm start` server on 127.0.0.1:8787.
 */
import preact from "@preact/preset-vite";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here("."),
  publicDir: here("public"),
  plugins: [preact()],
  resolve: {
    // The app talks to the server only through the SDK, bundled from its TypeScript source.
    alias: { "@edge-chat/sdk": here("../client/src/index.ts") },
  },
  build: {
    outDir: here("dist"),
    emptyOutDir: true,
    target: "es2022",
    assetsInlineLimit: 0,
  },
  server: {
    proxy: { "/v1": { target: "http://127.0.0.1:8787", ws: true } },
  },
});
