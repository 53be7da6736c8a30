/** What the bench-only meter (worker/lib/meter.ts, GET /__bench/meter) counts; the bench reads the same shape. */
export interface MeterCounts {
  workerInvocations: number;
  /** Calls on object stubs (RPC methods and fetch), by the caller. */
  doRpc: number;
  doRpcByMethod: Record<string, number>;
  /** WebSocket messages received by objects (billed as requests, 20:1). */
  wsIn: number;
  alarms: number;
  sqlStatements: number;
  sqlRowsRead: number;
  sqlRowsWritten: number;
  d1Queries: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  /** The same SQLite counts by statement (its text, whitespace folded, cut at 120 characters). */
  sqlByStatement?: Record<string, SqlStatementCounts>;
}

export interface SqlStatementCounts {
  n: number;
  read: number;
  written: number;
}
