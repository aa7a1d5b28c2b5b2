import { Worker } from 'node:worker_threads';
import type { Db } from './database.js';

/** How often the thread looks at how much the log holds (one 100-byte read of the `-shm` file). */
const INTERVAL_MS = 20;
/**
 * The thread copies the log once it holds this many pages not yet copied (SQLite's own
 * autocheckpoint size), or once the first of them has waited `maxDelayMs`: not at every tick,
 * because each checkpoint that empties the log costs the hub's thread an fsync at its next write
 * (see checkpointWorker.ts).
 */
const BATCH_FRAMES = 1000;
const MAX_DELAY_MS = 1000;
/**
 * The hub's own connection still checkpoints, after a commit, once the log is this many pages
 * long (SQLite's default: 1,000). A log starts over from its beginning only when a write finds it
 * wholly copied, which a steady stream of commits never leaves it (a flood grew it by 80 MB/s);
 * the hub's connection, the only writer, copies what the thread has not reached yet, and its next
 * write starts the log over. Also what bounds the log if the thread has stopped.
 */
const BACKSTOP_PAGES = 10_000;
const SQLITE_DEFAULT_PAGES = 1000;

export interface BackgroundCheckpoints {
  /** Stops the thread (its connection closed) and hands checkpoints back to the hub's connection. */
  stop(): Promise<void>;
}

/**
 * Checkpoints of the hub's database (copying the write-ahead log into the database file) in a
 * thread of their own. SQLite otherwise runs one in the committing connection whenever the log
 * has grown by 1,000 pages: on the event loop, right after a commit, with two fsyncs. With 100
 * devices publishing 10 msgs/s that was most of the PUBACK p99 (commits of one or two events
 * taking 7 to 10 ms instead of well under one). A checkpoint does not make a commit more durable
 * (WAL with synchronous=NORMAL: a commit has survived a crash of the process once it is written),
 * so where it runs changes only who waits for it.
 */
export function startBackgroundCheckpoints(
  db: Db,
  onError: (message: string) => void,
  options: { batchFrames?: number; maxDelayMs?: number } = {},
): BackgroundCheckpoints {
  const workerData = { path: db.name, intervalMs: INTERVAL_MS, batchFrames: options.batchFrames ?? BATCH_FRAMES, maxDelayMs: options.maxDelayMs ?? MAX_DELAY_MS };
  const worker = new Worker(new URL('./checkpointWorker.js', import.meta.url), { workerData });
  // It never keeps the process alive; stop() is how it ends in an orderly shutdown.
  worker.unref();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('message', (m: { error?: string }) => {
    if (m.error) onError(m.error);
  });
  worker.on('error', (e) => {
    onError(e.message);
    handBack();
  });
  db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  let stopped = false;
  function handBack(): void {
    if (db.open) db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_PAGES}`);
  }
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      // Waited for: the process stays up until the thread has closed its connection.
      worker.ref();
      worker.postMessage('stop');
      await exited;
      handBack();
    },
  };
}
