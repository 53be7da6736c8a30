/**
 * Where the SDK keeps what must survive a restart: the session, the sync cursor together
 * with the state it produced, and the outbox. Values are JSON-compatible. `write` is
 * atomic: after a crash either every entry of one call is stored or none is, which is
 * what lets a cursor never run ahead of (or behind) the state it belongs to.
 */
export interface ChatStorage {
  read<T = unknown>(key: string): Promise<T | undefined>;
  /** Stores every entry at once; an `undefined` value deletes the key. */
  write(entries: Record<string, unknown>): Promise<void>;
}

const clone = <T>(value: T): T => (value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T));

/** Lives as long as the process: for tests, and for clients that start fresh each time. */
export class MemoryStorage implements ChatStorage {
  private readonly data = new Map<string, unknown>();

  async read<T>(key: string): Promise<T | undefined> {
    return clone(this.data.get(key) as T | undefined);
  }

  async write(entries: Record<string, unknown>): Promise<void> {
    for (const [key, value] of Object.entries(entries)) {
      if (value === undefined) this.data.delete(key);
      else this.data.set(key, clone(value));
    }
  }
}

/** Browsers: one IndexedDB object store; each `write` is one readwrite transaction. */
export class IndexedDBStorage implements ChatStorage {
  private db: Promise<IDBDatabase> | null = null;

  constructor(
    private readonly name = "edge-chat",
    private readonly factory: IDBFactory = globalThis.indexedDB,
  ) {
    if (!factory) throw new Error("IndexedDBStorage: indexedDB is not available here");
  }

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise((resolve, reject) => {
      const request = this.factory.open(this.name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore("kv");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    return this.db;
  }

  async read<T>(key: string): Promise<T | undefined> {
    const db = await this.open();
    return new Promise((resolve, reject) => {
      const request = db.transaction("kv", "readonly").objectStore("kv").get(key);
      request.onsuccess = () => resolve(request.result as T | undefined);
      request.onerror = () => reject(request.error);
    });
  }

  async write(entries: Record<string, unknown>): Promise<void> {
    const db = await this.open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction("kv", "readwrite");
      const store = tx.objectStore("kv");
      for (const [key, value] of Object.entries(entries)) {
        if (value === undefined) store.delete(key);
        else store.put(clone(value), key);
      }
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    });
  }

  /** Forgets everything (sign-out). */
  async clear(): Promise<void> {
    const db = await this.open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction("kv", "readwrite");
      tx.objectStore("kv").clear();
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
  }
}
