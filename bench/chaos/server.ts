/**
 * The server under test: test/e2e/server.ts's TestServer (the real `npm start` script in
 * its own process group, stop/restart with a signal on the same persisted state), plus
 * extra `wrangler dev` flags such as `--var SEND_RATE_PER_MINUTE:1000000`.
 *
 * TestServer has no option for extra flags and is not ours to change, so the flags are
 * appended to its spawn of scripts/start.mjs (which passes unknown flags through to
 * `wrangler dev`): `node:child_process`'s `spawn` is wrapped, and only a call whose first
 * argument is that script is touched. `extraArgsOf` reads the spawned argv back, so a run
 * can prove the flags were applied. If TestServer gains an `args` option, use it instead.
 */
import { createRequire, syncBuiltinESMExports } from "node:module";
import type { TestServer as TestServerType } from "../../test/e2e/server";

type Spawn = typeof import("node:child_process").spawn;

let pendingArgs: string[] = [];
let installed = false;

function installSpawnHook(): void {
  if (installed) return;
  installed = true;
  const childProcess = createRequire(import.meta.url)("node:child_process") as { spawn: Spawn };
  const original = childProcess.spawn;
  const hooked = function (this: unknown, command: string, args?: unknown, options?: unknown) {
    if (pendingArgs.length > 0 && Array.isArray(args) && typeof args[0] === "string" && /scripts[\\/]start\.mjs$/.test(args[0])) {
      args = [...args, ...pendingArgs];
    }
    return (original as (...a: unknown[]) => unknown).call(this, command, args, options);
  } as unknown as Spawn;
  childProcess.spawn = hooked;
  // ES module imports of node:child_process (test/e2e/server.ts) see the wrapper from now on.
  syncBuiltinESMExports();
}

export interface ChaosServer {
  server: TestServerType;
  /** Stops with `signal` (the whole process group) and starts again on the same state and port. */
  restart(signal: "SIGKILL" | "SIGTERM"): Promise<void>;
}

/**
 * Starts the server on `persistDir` with `extraArgs` appended to the start script's
 * command line, on this start and every restart.
 */
export async function startServer(persistDir: string, extraArgs: string[]): Promise<ChaosServer> {
  installSpawnHook();
  // Imported here, not at the top, so that E2E_SNAPSHOT set by the caller is seen when it loads.
  const { TestServer } = await import("../../test/e2e/server");
  const withArgs = async <T>(work: () => Promise<T>): Promise<T> => {
    pendingArgs = extraArgs;
    try {
      return await work();
    } finally {
      pendingArgs = [];
    }
  };
  const server = await withArgs(() => TestServer.start({ persistDir }));
  const applied = extraArgsOf(server);
  if (extraArgs.length > 0 && applied.join(" ") !== extraArgs.join(" ")) {
    await server.stop("SIGKILL");
    throw new Error(`extra server flags not applied (spawned with ${JSON.stringify(applied)}); has test/e2e/server.ts changed how it spawns?`);
  }
  return { server, restart: (signal) => withArgs(() => server.restart(signal)) };
}

/** The flags after `--persist-to DIR` on the running server's command line. */
export function extraArgsOf(server: TestServerType): string[] {
  const argv = (server as unknown as { child?: { spawnargs?: string[] } | null }).child?.spawnargs ?? [];
  const i = argv.indexOf("--persist-to");
  return i < 0 ? [] : argv.slice(i + 2);
}
