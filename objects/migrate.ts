/**
 * Versioned storage schemas for the objects' SQLite. Each entry of `steps` is one
 * migration; the applied count lives in `_schema`. Run from the constructor inside
 * `blockConcurrencyWhile`, so no request ever sees a half-migrated object.
 */
export function migrate(sql: SqlStorage, steps: readonly string[]): void {
  sql.exec("CREATE TABLE IF NOT EXISTS _schema (version INTEGER NOT NULL)");
  const row = sql.exec<{ version: number }>("SELECT version FROM _schema").toArray()[0];
  let version = row?.version ?? 0;
  if (!row) sql.exec("INSERT INTO _schema (version) VALUES (0)");
  while (version < steps.length) {
    sql.exec(steps[version]!);
    version += 1;
    sql.exec("UPDATE _schema SET version = ?", version);
  }
}
