/**
 * Node-only entry (`client/dist/node.js`): a storage kept in one JSON file. Kept out of
 * the main entry so that browser bundles never see `node:fs`.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { ChatStorage } from "./storage";

/**
 * The whole state in one file, replaced atomically (write a temporary file, then rename
 * over the old one), so a crash leaves either the old state or the new, never half.
 */
export class FileStorage implements ChatStorage {
  private data: Promise<Record<string, unknown>> | null = null;
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  private load(): Promise<Record<string, unknown>> {
    this.data ??= readFile(this.path, "utf8").then(
      (text) => JSON.parse(text) as Record<string, unknown>,
      (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return {};
        throw err;
      },
    );
    return this.data;
  }

  async read<T>(key: string): Promise<T | undefined> {
    const value = (await this.load())[key];
    return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as T);
  }

  write(entries: Record<string, unknown>): Promise<void> {
    const run = this.queue.then(async () => {
      const next = { ...(await this.load()) };
      for (const [key, value] of Object.entries(entries)) {
        if (value === undefined) delete next[key];
        else next[key] = JSON.parse(JSON.stringify(value));
      }
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(next));
      await rename(tmp, this.path);
      this.data = Promise.resolve(next);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

export * from "./index";
