import { existsSync } from 'node:fs';
import { openDatabase } from './database.js';
import { SqliteEventLog } from './eventLog.js';
import { BUILT_IN_ENTITY, type EventLog } from '../eventLog.js';

/**
 * The event log of a data directory opened read-only, beside a running hub (WAL lets readers
 * proceed while the hub commits). For tools such as `fleethub monitor-events`.
 */
export function openEventLogReadOnly(path: string): { log: EventLog; partitions: () => number; close(): void } | undefined {
  if (!existsSync(path)) return undefined;
  const db = openDatabase(path, { readonly: true });
  const hasLog = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_partitions'`).get();
  if (!hasLog) {
    db.close();
    return undefined;
  }
  // A data directory the hub has not opened since the log became multi-entity: it migrates at the next start.
  const columns = db.prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('event_partitions')`).all();
  if (!columns.some((c) => c.name === 'entity')) {
    db.close();
    return undefined;
  }
  const count = db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM event_partitions WHERE entity = '${BUILT_IN_ENTITY}'`);
  return { log: new SqliteEventLog(db), partitions: () => count.get()!.n, close: () => db.close() };
}
