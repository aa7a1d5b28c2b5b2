import Database from 'better-sqlite3';

export type Db = Database.Database;

/**
 * Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
 * Append only: never edit a migration that has shipped.
 */
const migrations: string[] = [
  `CREATE TABLE devices (
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
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
