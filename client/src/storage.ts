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

const READ_TIMEOUT_MS = 5_000;

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
      request.onsuccess = () => {
        const db = request.result;
        // Another tab upgrading (a later app version) must not wait on this connection.
        db.onversionchange = () => {
          db.close();
          this.db = null;
        };
        resolve(db);
      };
      request.onerror = () => {
        this.db = null;
        reject(request.error);
      };
      request.onblocked = () => console.warn("IndexedDBStorage: opening waits for another tab to close the database");
    });
    return this.db;
  }

  /**
   * A read that has not answered in READ_TIMEOUT_MS, opening the database included, is tried
   * again on a new connection (twice at most, then an error the caller can act on): in a
   * browser under load a first read on a fresh page, or the open right after a reload that
   * cut a sign-out's transaction short, was seen never to answer.
   */
  async read<T>(key: string): Promise<T | undefined> {
    for (let attempt = 1; ; attempt++) {
      const answer = await Promise.race([this.readOnce<T>(key), new Promise<null>((resolve) => setTimeout(() => resolve(null), READ_TIMEOUT_MS))]);
      if (answer) return answer.value;
      if (attempt >= 3) throw new Error(`IndexedDBStorage: reading ${key} did not answer`);
      console.warn(`IndexedDBStorage: reading ${key} did not answer in ${READ_TIMEOUT_MS} ms; reopening`);
      const stuck = this.db;
      this.db = null;
      // A connection that did open late is closed, not leaked.
      void stuck?.then((db) => db.close(), () => undefined);
    }
  }

  private async readOnce<T>(key: string): Promise<{ value: T | undefined }> {
    const db = await this.open();
    return new Promise((resolve, reject) => {
      const request = db.transaction("kv", "readonly").objectStore("kv").get(key);
      request.onsuccess = () => resolve({ value: request.result as T | undefined });
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
