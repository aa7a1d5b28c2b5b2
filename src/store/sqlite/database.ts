import Database from 'better-sqlite3';
import { dpsMigrationSql } from './dps.js';

export type Db = Database.Database;

/**
 * Schema migrations by name, applied once each in list order and recorded in `schema_migrations`.
 * Names (not positions) identify them so that features built in parallel can each add their own.
 * Append only: never edit a migration that has shipped.
 */
export const migrations: { name: string; sql: string }[] = [
  {
    name: '001-registry',
    sql: `CREATE TABLE devices (
            device_id TEXT PRIMARY KEY,
            etag TEXT NOT NULL,
            status TEXT NOT NULL,
            connection_state TEXT NOT NULL,
            doc TEXT NOT NULL
          );
          CREATE TABLE modules (
            device_id TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
            module_id TEXT NOT NULL,
            etag TEXT NOT NULL,
            doc TEXT NOT NULL,
            PRIMARY KEY (device_id, module_id)
          );
          CREATE TABLE policies (
            key_name TEXT PRIMARY KEY,
            doc TEXT NOT NULL
          );`,
  },
  { name: '300-dps', sql: dpsMigrationSql },
];

export function openDatabase(path: string, options: { readonly?: boolean } = {}): Db {
  const db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  db.pragma('busy_timeout = 5000');
  if (!options.readonly) {
    db.pragma('journal_mode = WAL');
    // WAL + NORMAL is durable against process crashes (what an acknowledged write must survive);
    // FULL also survives power loss at the cost of an fsync per commit. Configurable later.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
  }
  return db;
}

function migrate(db: Db): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  const applied = new Set(db.prepare<[], { name: string }>('SELECT name FROM schema_migrations').all().map((r) => r.name));
  const record = db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)');
  for (const m of migrations) {
    if (applied.has(m.name)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.name, new Date().toISOString());
    })();
  }
}
