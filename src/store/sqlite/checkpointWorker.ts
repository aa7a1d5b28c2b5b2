/**
 * The thread of BackgroundCheckpoints (checkpoints.ts): its own connection to the hub's database,
 * copying the write-ahead log's committed pages into the database file every `intervalMs`.
 * PASSIVE: it never waits for, nor blocks, the hub's connection.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const port = parentPort!;
const db = new Database(path, { fileMustExist: true });
// As the hub's own connection: a checkpoint syncs the log before it copies and the file after.
db.pragma('synchronous = NORMAL');
let failed = false;
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    failed = false;
  } catch (e) {
    // Said once per run of failures; the hub's own connection checkpoints meanwhile (its backstop).
    if (!failed) port.postMessage({ error: e instanceof Error ? e.message : String(e) });
    failed = true;
  }
}, intervalMs);
port.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  port.close();
});
