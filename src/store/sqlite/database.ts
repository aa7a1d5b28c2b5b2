import Database from 'better-sqlite3';

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
  {
    // Device-to-cloud event log: per-partition state, and the events (rowid table: bodies up to 256 KB
    // stay out of the index b-trees).
    name: '100-event-log',
    sql: `CREATE TABLE event_partitions (
            partition INTEGER PRIMARY KEY,
            last_sequence_number INTEGER NOT NULL,
            last_offset INTEGER NOT NULL,
            next_offset INTEGER NOT NULL,
            last_enqueued_time INTEGER NOT NULL
          );
          CREATE TABLE events (
            partition INTEGER NOT NULL,
            sequence_number INTEGER NOT NULL,
            byte_offset INTEGER NOT NULL,
            enqueued_time INTEGER NOT NULL,
            body BLOB NOT NULL,
            system_properties TEXT NOT NULL,
            properties TEXT NOT NULL
          );
          CREATE UNIQUE INDEX events_by_sequence ON events (partition, sequence_number);
          CREATE INDEX events_by_offset ON events (partition, byte_offset);
          CREATE INDEX events_by_time ON events (partition, enqueued_time);`,
  },
  {
    name: '101-ca-certificates',
    sql: `CREATE TABLE ca_certificates (
            name TEXT PRIMARY KEY,
            etag TEXT NOT NULL,
            doc TEXT NOT NULL
          );`,
  },
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
