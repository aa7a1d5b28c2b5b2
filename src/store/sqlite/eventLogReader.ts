import { existsSync } from 'node:fs';
import { openDatabase } from './database.js';
import { SqliteEventLog } from './eventLog.js';
import type { EventLog } from '../eventLog.js';

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
  const count = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM event_partitions');
  return { log: new SqliteEventLog(db), partitions: () => count.get()!.n, close: () => db.close() };
}
