/**
 * Bench-only metering (BENCH_METER=1, set by `npm run bench`, never in wrangler.toml): counts
 * the units Cloudflare bills — Durable Object requests (RPCs and fetches into objects, socket
 * messages, alarms), SQLite rows read and written, D1 queries and rows, Worker invocations —
 * so the bench can report them per message. Everything is patched in place once per isolate
 * (locally the Worker and every object share one), so no call site changes; unset, nothing
 * is patched and nothing runs.
 */
import type { MeterCounts, SqlStatementCounts } from "../../protocol/meter";
import { readVar, type Vars } from "../../shared/config";

export type { MeterCounts };

const counts: MeterCounts = {
  workerInvocations: 0,
  doRpc: 0,
  doRpcByMethod: {},
  wsIn: 0,
  alarms: 0,
  sqlStatements: 0,
  sqlRowsRead: 0,
  sqlRowsWritten: 0,
  d1Queries: 0,
  d1RowsRead: 0,
  d1RowsWritten: 0,
  sqlByStatement: {},
};

export const METER_PATH = "/__bench/meter";

export const meterEnabled = (env: Vars): boolean => readVar(env, "BENCH_METER") === "1";

export function meterSnapshot(): MeterCounts {
  harvestSql();
  return structuredClone(counts);
}

let installed = false;

/** Patches the bindings' prototypes (stubs, D1) and the object classes, once. */
export function installMeter(env: Env, objectClasses: { prototype: object }[]): void {
  if (installed) return;
  installed = true;
  for (const binding of Object.values(env)) {
    if (binding && typeof binding === "object" && "idFromName" in binding && "get" in binding) patchNamespace(binding);
  }
  const db: D1Database | undefined = env.DB;
  if (db) patchD1(db);
  for (const cls of objectClasses) patchObjectClass(cls.prototype as Record<string, unknown>);
}

const patchedNamespaces = new Set<object>();

function patchNamespace(ns: object): void {
  const proto = Object.getPrototypeOf(ns) as Record<string, unknown>;
  if (patchedNamespaces.has(proto)) return;
  patchedNamespaces.add(proto);
  for (const name of ["get", "getByName"]) {
    const original = proto[name];
    if (typeof original !== "function") continue;
    proto[name] = function (this: unknown, ...args: unknown[]) {
      return meteredStub(original.apply(this, args) as object);
    };
  }
}

function meteredStub(stub: object): object {
  return new Proxy(stub, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== "function" || typeof prop !== "string" || prop === "then") return value;
      return (...args: unknown[]) => {
        counts.doRpc += 1;
        counts.doRpcByMethod[prop] = (counts.doRpcByMethod[prop] ?? 0) + 1;
        return Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
      };
    },
  });
}

function patchD1(db: D1Database): void {
  const meta = (r: unknown) => {
    const m = (r as { meta?: { rows_read?: number; rows_written?: number } } | null)?.meta;
    counts.d1RowsRead += m?.rows_read ?? 0;
    counts.d1RowsWritten += m?.rows_written ?? 0;
    return r;
  };
  const stmtProto = Object.getPrototypeOf(db.prepare("SELECT 1")) as Record<string, unknown>;
  for (const name of ["first", "all", "run", "raw"]) {
    const original = stmtProto[name];
    if (typeof original !== "function") continue;
    stmtProto[name] = async function (this: unknown, ...args: unknown[]) {
      counts.d1Queries += 1;
      const result = await (original as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      if (name === "raw" && Array.isArray(result)) counts.d1RowsRead += result.length;
      return name === "all" || name === "run" ? meta(result) : result;
    };
  }
  const dbProto = Object.getPrototypeOf(db) as Record<string, unknown>;
  const batch = dbProto.batch;
  if (typeof batch === "function") {
    dbProto.batch = async function (this: unknown, statements: unknown[]) {
      counts.d1Queries += statements.length;
      const results = (await (batch as (s: unknown[]) => Promise<unknown[]>).call(this, statements)) ?? [];
      for (const r of results) meta(r);
      return results;
    };
  }
}

/** Cursors whose final row counts are read at the next statement (they are consumed by then). */
let pending: { cursor: SqlStorageCursor<Record<string, SqlStorageValue>>; statement: SqlStatementCounts }[] = [];

function harvestSql(): void {
  for (const p of pending) {
    try {
      const read = p.cursor.rowsRead;
      const written = p.cursor.rowsWritten;
      counts.sqlRowsRead += read;
      counts.sqlRowsWritten += written;
      p.statement.read += read;
      p.statement.written += written;
    } catch {
      // the object went away
    }
  }
  pending = [];
}

/** Statement texts seen so far, folded once each (the same few strings come back on every call). */
const folded = new Map<string, SqlStatementCounts>();

function statementCounts(query: string): SqlStatementCounts {
  let entry = folded.get(query);
  if (!entry) {
    const key = query.replace(/\s+/g, " ").trim().slice(0, 120);
    entry = counts.sqlByStatement![key] ??= { n: 0, read: 0, written: 0 };
    folded.set(query, entry);
  }
  return entry;
}

let sqlPatched = false;

function patchSql(sql: SqlStorage): void {
  if (sqlPatched) return;
  sqlPatched = true;
  const proto = Object.getPrototypeOf(sql) as { exec: SqlStorage["exec"] };
  const exec = proto.exec;
  proto.exec = function (this: SqlStorage, query: string, ...bindings: unknown[]) {
    harvestSql();
    counts.sqlStatements += 1;
    const statement = statementCounts(query);
    statement.n += 1;
    const cursor = exec.call(this, query, ...bindings);
    pending.push({ cursor, statement });
    return cursor;
  } as SqlStorage["exec"];
}

function patchObjectClass(proto: Record<string, unknown>): void {
  for (const name of Object.getOwnPropertyNames(proto)) {
    // Only plain methods: reading a getter here would run it on the prototype.
    const original = Object.getOwnPropertyDescriptor(proto, name)?.value as unknown;
    if (name === "constructor" || typeof original !== "function") continue;
    proto[name] = function (this: { ctx?: DurableObjectState }, ...args: unknown[]) {
      if (!sqlPatched && this.ctx?.storage?.sql) patchSql(this.ctx.storage.sql);
      if (name === "webSocketMessage") counts.wsIn += 1;
      else if (name === "alarm") counts.alarms += 1;
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
}

export function countInvocation(): void {
  counts.workerInvocations += 1;
}
