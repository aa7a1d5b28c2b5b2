/**
 * The thread of BackgroundCheckpoints (checkpoints.ts): its own connection to the hub's database,
 * copying the write-ahead log's committed pages into the database file once the log holds
 * `batchFrames` pages not yet copied, or once pages have waited `maxDelayMs`, then at every tick
 * until the log is wholly copied.
 * PASSIVE: it never waits for, nor blocks, the hub's connection.
 *
 * Why not every few milliseconds: a checkpoint that copies the whole log makes the hub's next
 * write start the log over, and SQLite syncs the log's new header right then (wal.c, "Sync the
 * header"): an fsync on the hub's own thread. Checkpointing every 20 ms meant 20-30 of them a
 * second with 100 devices publishing, each a disk flush the event loop waited for (0.5 ms on a
 * quiet disk, 750 ms once on this VM's). How much the log holds is read from the wal-index
 * header in the `-shm` file (https://www.sqlite.org/walformat.html: mxFrame at byte 16, the
 * checkpoint's nBackfill at byte 96, native byte order); a header not in that form, or no
 * `-shm`, and the thread checkpoints at every tick, as it did before.
 */
import Database from 'better-sqlite3';
import { closeSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';

const { path, intervalMs, batchFrames, maxDelayMs } = workerData as { path: string; intervalMs: number; batchFrames: number; maxDelayMs: number };
const port = parentPort!;
const db = new Database(path, { fileMustExist: true });
// As the hub's own connection: a checkpoint syncs the log before it copies and the file after.
db.pragma('synchronous = NORMAL');

/** The wal-index's version (WALINDEX_MAX_VERSION): any other layout is not read. */
const WAL_INDEX_VERSION = 3007000;
const HEADER_BYTES = 48;
const header = Buffer.alloc(2 * HEADER_BYTES + 4);
const u32 = endianness() === 'LE' ? (o: number) => header.readUInt32LE(o) : (o: number) => header.readUInt32BE(o);
let shm: number | undefined;
try {
  // Opened by the hub's connection before this thread starts (WAL mode creates it).
  shm = openSync(`${path}-shm`, 'r');
} catch {
  shm = undefined;
}

/** Pages in the log not yet copied into the database file; undefined when the header cannot be read as expected. */
function framesToCopy(): number | undefined {
  try {
    return readFramesToCopy();
  } catch {
    return undefined;
  }
}

function readFramesToCopy(): number | undefined {
  if (shm === undefined) return undefined;
  if (readSync(shm, header, 0, header.length, 0) < header.length) return undefined;
  // SQLite writes the header twice; copies that differ were read mid-update.
  if (header.compare(header, 0, HEADER_BYTES, HEADER_BYTES, 2 * HEADER_BYTES) !== 0) return undefined;
  if (u32(0) !== WAL_INDEX_VERSION || header[12] === 0) return undefined;
  return Math.max(0, u32(16) - u32(2 * HEADER_BYTES));
}

let failed = false;
let waitingSince: number | undefined;
/**
 * Set while a round of checkpoints has not yet copied the whole log: the round goes on at every
 * tick until one does. The hub's writes go on meanwhile, and a log never wholly copied never
 * starts over: it would grow to the hub connection's own backstop, a checkpoint on its thread.
 */
let catchingUp = false;
function checkpoint(): void {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    // What the hub wrote while this one copied (its result counts only the log it started with).
    catchingUp = (framesToCopy() ?? 0) > 0;
    failed = false;
  } catch (e) {
    // Said once per run of failures; the hub's own connection checkpoints meanwhile (its backstop).
    if (!failed) port.postMessage({ error: e instanceof Error ? e.message : String(e) });
    failed = true;
  }
}
const timer = setInterval(() => {
  const frames = framesToCopy();
  if (frames === 0) {
    waitingSince = undefined;
    catchingUp = false;
    return;
  }
  const now = Date.now();
  if (frames !== undefined && !catchingUp) {
    waitingSince ??= now;
    if (frames < batchFrames && now - waitingSince < maxDelayMs) return;
  }
  checkpoint();
  waitingSince = undefined;
}, intervalMs);
port.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  if (shm !== undefined) closeSync(shm);
  db.close();
  port.close();
});
